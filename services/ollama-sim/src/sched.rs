//! Ollama's scheduler (`server/sched.go`) as the sim plays it: a request whose model must be
//! loaded queues for the one loader (at most `max_queue` wait; past that, 503); a request
//! for a model being loaded waits for that load outside the queue; a request for a loaded
//! model never queues, it then waits for one of the model's slots without bound.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::OwnedMutexGuard;

use crate::config::SimConfig;
use crate::error::ApiError;
use crate::keep_alive::KeepAlive;
use crate::models::{Lookup, Release};
use crate::slots::{SlotPermit, Slots};
use crate::state::SimState;

/// What real Ollama reports as load_duration when the model is already loaded.
const WARM_LOAD: Duration = Duration::from_micros(250);

/// A reference on a loaded model; released as abandoned if the request goes away.
pub(crate) struct Lease<'a> {
    state: &'a SimState,
    model: &'a str,
    generation: u64,
    released: bool,
}

impl Lease<'_> {
    pub(crate) fn finish(mut self, how: Release) {
        self.released = true;
        self.state.models().release(self.model, self.generation, how);
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if !self.released {
            self.state.models().release(self.model, self.generation, Release::Abandoned);
        }
    }
}

/// A place in the pending-load queue, given up however the wait ends.
struct Pending<'a>(&'a SimState);

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        let mut models = self.0.models();
        models.pending_loads = models.pending_loads.saturating_sub(1);
    }
}

/// The loader, held while one model loads; if the load does not finish, its waiters are
/// woken to look again.
struct Loading<'a> {
    state: &'a SimState,
    model: &'a str,
    loader: Option<OwnedMutexGuard<()>>,
    finished: bool,
}

impl Drop for Loading<'_> {
    fn drop(&mut self) {
        // Free the loader before waking the waiters, so one of them can take it at once.
        self.loader.take();
        if !self.finished {
            self.state.models().abandon_load(self.model);
        }
    }
}

/// The next thing a request does to get its model.
enum Step {
    Leased(u64),
    WaitForLoad(tokio::sync::watch::Receiver<()>),
    Load(OwnedMutexGuard<()>),
    Queue,
    Busy,
}

impl SimState {
    /// Runs `fut`, or gives up with 503 when the simulator shuts down.
    pub(crate) async fn until<T>(&self, fut: impl Future<Output = T>) -> Result<T, ApiError> {
        tokio::select! {
            v = fut => Ok(v),
            () = self.0.shutdown.cancelled() => Err(ApiError::ShuttingDown),
        }
    }

    /// Sleeps, or gives up with 503 when the simulator shuts down.
    pub(crate) async fn sleep(&self, d: Duration) -> Result<(), ApiError> {
        if d.is_zero() {
            return Ok(());
        }
        self.until(tokio::time::sleep(d)).await
    }

    /// Gets `model` loaded (paying `load_ms` if this request loads it) and takes a
    /// reference on it. Returns the load_duration to report: the time the request waited
    /// for its model, as Ollama measures it from the start of the handler.
    pub(crate) async fn lease<'a>(
        &'a self,
        model: &'a str,
        keep_alive: Option<KeepAlive>,
        config: &SimConfig,
    ) -> Result<(Lease<'a>, Duration), ApiError> {
        let start = Instant::now();
        let waited = |w: bool| if w { start.elapsed().max(WARM_LOAD) } else { WARM_LOAD };
        let mut has_waited = false;
        // The loader, once this request has waited its turn in the queue for it.
        let mut turn: Option<OwnedMutexGuard<()>> = None;
        loop {
            let step = {
                let mut models = self.models();
                match models.lookup(model, keep_alive) {
                    Lookup::Leased(g) => Step::Leased(g),
                    Lookup::Loading(rx) => Step::WaitForLoad(rx),
                    Lookup::Absent => {
                        // Ollama hands a free loader the request at once (its receive is
                        // ready); otherwise the request needs room in the queue.
                        match turn.take().map_or_else(|| self.0.loader.clone().try_lock_owned(), Ok)
                        {
                            Ok(loader) => {
                                models.begin_load(model);
                                Step::Load(loader)
                            }
                            Err(_) if models.pending_loads < config.max_queue => {
                                models.pending_loads += 1;
                                Step::Queue
                            }
                            Err(_) => Step::Busy,
                        }
                    }
                }
            };
            match step {
                Step::Leased(generation) => {
                    let lease = Lease { state: self, model, generation, released: false };
                    return Ok((lease, waited(has_waited)));
                }
                Step::WaitForLoad(mut rx) => {
                    has_waited = true;
                    turn = None;
                    // Ends when the load's sender drops: loaded, or abandoned.
                    let _ = self.until(rx.changed()).await?;
                }
                Step::Queue => {
                    has_waited = true;
                    let pending = Pending(self);
                    turn = Some(self.until(self.0.loader.clone().lock_owned()).await?);
                    drop(pending);
                }
                Step::Busy => {
                    self.0
                        .counters
                        .busy_rejections
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    return Err(ApiError::Busy);
                }
                Step::Load(loader) => {
                    let mut loading =
                        Loading { state: self, model, loader: Some(loader), finished: false };
                    self.sleep(Duration::from_millis(config.load_ms)).await?;
                    let generation =
                        self.models().insert_loaded(model, keep_alive.unwrap_or(config.keep_alive));
                    loading.finished = true;
                    drop(loading);
                    tracing::debug!(model, "simulated model load");
                    let lease = Lease { state: self, model, generation, released: false };
                    return Ok((lease, start.elapsed()));
                }
            }
        }
    }

    /// The slots of one model, created with the configured `parallel` on first use.
    pub(crate) fn slots(&self, model: &str) -> Arc<Slots> {
        // Config before the map, the order `set_config` takes them in.
        let config = self.0.config.read().unwrap_or_else(|e| e.into_inner());
        let mut slots = crate::state::lock(&self.0.slots);
        slots
            .entry(model.to_owned())
            .or_insert_with(|| Arc::new(Slots::new(config.parallel)))
            .clone()
    }

    /// Waits for a slot of `model`, for as long as it takes (or until shutdown).
    pub(crate) async fn acquire_slot(&self, model: &str) -> Result<SlotPermit, ApiError> {
        let slots = self.slots(model);
        self.until(slots.acquire()).await?.map_err(|_| ApiError::ShuttingDown)
    }
}
