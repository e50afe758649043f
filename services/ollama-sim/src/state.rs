//! The simulator's shared state: live config, loaded models, slots, fault dice and
//! counters, plus the snapshot `/sim/state` serves.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::SystemTime;

use axum::body::Bytes;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, SimConfig};
use crate::faults::{FaultDice, FaultPlan};
use crate::models::Models;
use crate::slots::Slots;

/// Cheap to clone; every clone is the same simulator.
#[derive(Clone, Debug)]
pub struct SimState(pub(crate) Arc<Inner>);

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: RwLock<SimConfig>,
    models: Mutex<Models>,
    /// Held while a model loads: like Ollama's `processPending`, one load at a time.
    pub(crate) loader: Arc<tokio::sync::Mutex<()>>,
    /// Each model's parallel slots, by normalised name.
    pub(crate) slots: Mutex<HashMap<String, Arc<Slots>>>,
    /// The body of the last native /api/chat request, as received (cheap to keep: the
    /// bytes are shared, and parsed only when a snapshot is taken).
    pub(crate) last_chat_request: Mutex<Option<Bytes>>,
    dice: Mutex<FaultDice>,
    pub(crate) counters: Counters,
    pub(crate) shutdown: CancellationToken,
    pub(crate) started: SystemTime,
}

/// Monotonic counters and gauges, read by `/sim/state`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub completed: AtomicU64,
    pub errors_injected: AtomicU64,
    pub drops_injected: AtomicU64,
    pub hangs_injected: AtomicU64,
    pub slow_tails_injected: AtomicU64,
    pub busy_rejections: AtomicU64,
    pub in_flight: AtomicU64,
    /// Source of OpenAI response ids (`chatcmpl-N`).
    pub ids: AtomicU64,
}

/// What `GET /sim/state` returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimSnapshot {
    pub loaded_models: Vec<LoadedModel>,
    /// Simulated VRAM of all loaded models, in bytes.
    pub vram_bytes: u64,
    /// Requests holding a slot now.
    pub in_flight: u64,
    /// Requests waiting for a slot of a loaded model now.
    pub queue_depth: u64,
    /// Requests waiting in the pending-load queue now (bounded by `max_queue`).
    #[serde(default)]
    pub pending_loads: u64,
    pub counters: SimCounters,
    /// The last native /api/chat request body received (JSON; a string if it was not
    /// JSON), so a test can check what its client sent.
    #[serde(default)]
    pub last_chat_request: Option<serde_json::Value>,
}

/// One loaded model in [`SimSnapshot`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadedModel {
    pub name: String,
    pub vram_bytes: u64,
    pub leaked_bytes: u64,
    /// Requests using it now.
    pub in_use: u64,
    /// Requests it completed since it was loaded.
    pub requests_served: u64,
    /// Milliseconds until keep_alive unloads it; null while in use or kept forever.
    pub expires_in_ms: Option<u64>,
}

/// Totals since start, in [`SimSnapshot`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimCounters {
    /// Inference requests received (after validation), whatever became of them.
    pub requests: u64,
    /// Inference requests answered successfully.
    pub completed: u64,
    pub loads: u64,
    /// Unloads by keep_alive (expiry or 0).
    pub unloads: u64,
    /// Forced unloads (`evict_every`, `POST /sim/evict`).
    pub evictions: u64,
    pub errors_injected: u64,
    pub drops_injected: u64,
    pub hangs_injected: u64,
    pub slow_tails_injected: u64,
    /// 503 answers because the pending-load queue was full.
    pub busy_rejections: u64,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not wedge the simulator; the data stays consistent enough.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SimState {
    /// A fresh simulator with nothing loaded; fails on an unusable config.
    pub fn new(config: SimConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self(Arc::new(Inner {
            dice: Mutex::new(FaultDice::new(config.fault_seed)),
            config: RwLock::new(config),
            models: Mutex::new(Models::default()),
            loader: Arc::new(tokio::sync::Mutex::new(())),
            slots: Mutex::new(HashMap::new()),
            last_chat_request: Mutex::new(None),
            counters: Counters::default(),
            shutdown: CancellationToken::new(),
            started: SystemTime::now(),
        })))
    }

    /// The settings in force now.
    pub fn config(&self) -> SimConfig {
        self.0.config.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the settings (validated); running requests keep their plan.
    pub fn set_config(&self, config: SimConfig) -> Result<(), ConfigError> {
        config.validate()?;
        let mut current = self.0.config.write().unwrap_or_else(|e| e.into_inner());
        self.resize_slots(config.parallel);
        *current = config;
        Ok(())
    }

    /// Applies a JSON merge patch to the settings and returns the result.
    pub fn patch_config(&self, patch: &serde_json::Value) -> Result<SimConfig, ConfigError> {
        let mut current = self.0.config.write().unwrap_or_else(|e| e.into_inner());
        let next = current.patched(patch)?;
        self.resize_slots(next.parallel);
        *current = next.clone();
        Ok(next)
    }

    /// Resizes every model's slots; called with the config write lock held, so no model
    /// gets slots of the old size meanwhile.
    fn resize_slots(&self, parallel: usize) {
        for slots in lock(&self.0.slots).values() {
            slots.resize(parallel);
        }
    }

    /// Keeps the body of a native chat request for the snapshot.
    pub(crate) fn record_chat_request(&self, body: &Bytes) {
        *lock(&self.0.last_chat_request) = Some(body.clone());
    }

    /// Forcibly unloads every model now; returns how many were loaded.
    pub fn evict_all(&self) -> usize {
        self.models().evict_all()
    }

    /// Counters, gauges and loaded models right now.
    pub fn snapshot(&self) -> SimSnapshot {
        let config = self.config();
        let mut models = self.models();
        let loaded = models.view(&config);
        let c = &self.0.counters;
        let get = |a: &AtomicU64| a.load(Ordering::SeqCst);
        let queue_depth = lock(&self.0.slots).values().map(|s| s.queue_depth() as u64).sum();
        let last_chat_request = lock(&self.0.last_chat_request).as_ref().map(|body| {
            serde_json::from_slice(body)
                .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into()))
        });
        SimSnapshot {
            vram_bytes: loaded.iter().map(|m| m.vram_bytes).sum(),
            loaded_models: loaded
                .into_iter()
                .map(|m| LoadedModel {
                    expires_in_ms: Models::remaining(m.expires_at).map(|d| d.as_millis() as u64),
                    name: m.name,
                    vram_bytes: m.vram_bytes,
                    leaked_bytes: m.leaked_bytes,
                    in_use: m.in_use as u64,
                    requests_served: m.served,
                })
                .collect(),
            in_flight: get(&c.in_flight),
            queue_depth,
            pending_loads: models.pending_loads as u64,
            counters: SimCounters {
                requests: get(&c.requests),
                completed: get(&c.completed),
                loads: models.loads,
                unloads: models.unloads,
                evictions: models.evictions,
                errors_injected: get(&c.errors_injected),
                drops_injected: get(&c.drops_injected),
                hangs_injected: get(&c.hangs_injected),
                slow_tails_injected: get(&c.slow_tails_injected),
                busy_rejections: get(&c.busy_rejections),
            },
            last_chat_request,
        }
    }

    pub(crate) fn models(&self) -> MutexGuard<'_, Models> {
        lock(&self.0.models)
    }

    pub(crate) fn roll_faults(&self, config: &SimConfig) -> FaultPlan {
        lock(&self.0.dice).roll(config)
    }

    /// Stops hanging and sleeping requests (they answer 503), for shutdown.
    pub(crate) fn cancel(&self) {
        self.0.shutdown.cancel();
    }
}
