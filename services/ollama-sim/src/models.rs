//! Which models are loaded or loading, until when, and how much simulated VRAM they hold.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::config::SimConfig;
use crate::keep_alive::KeepAlive;

const MIB: f64 = 1024.0 * 1024.0;

const DEFAULT_HOST: &str = "registry.ollama.ai";
const DEFAULT_NAMESPACE: &str = "library";

/// A model's name as Ollama shows it (`DisplayShortest`): a missing tag means `latest`,
/// and the default host and `library` namespace are dropped, so `llama3.2`,
/// `library/llama3.2` and `registry.ollama.ai/library/llama3.2:latest` are one model.
pub fn normalize(name: &str) -> String {
    let (path, tag) = match name.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') => (path, tag),
        _ => (name, "latest"),
    };
    let parts: Vec<&str> = path.split('/').collect();
    let (host, namespace, model) = match parts.as_slice() {
        [host, namespace, model] => (*host, *namespace, *model),
        [namespace, model] => (DEFAULT_HOST, *namespace, *model),
        _ => return format!("{path}:{tag}"),
    };
    if !host.eq_ignore_ascii_case(DEFAULT_HOST) {
        format!("{host}/{namespace}/{model}:{tag}")
    } else if !namespace.eq_ignore_ascii_case(DEFAULT_NAMESPACE) {
        format!("{namespace}/{model}:{tag}")
    } else {
        format!("{model}:{tag}")
    }
}

/// The sha256-looking digest Ollama shows for a model, stable per name.
pub fn digest(name: &str) -> String {
    Sha256::digest(name.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Ollama's `details` object for a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelDetails {
    pub parent_model: String,
    pub format: String,
    pub family: String,
    pub families: Vec<String>,
    pub parameter_size: String,
    pub quantization_level: String,
}

/// Plausible details from the name: family is the leading letters ("llama3.2:1b" ->
/// "llama"), parameter size from a tag like "1b" or "7b".
pub fn details(name: &str) -> ModelDetails {
    let base = name.rsplit('/').next().unwrap_or(name);
    let (repo, tag) = base.split_once(':').unwrap_or((base, "latest"));
    let family: String = repo.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
    let family = if family.is_empty() { "llama".to_owned() } else { family };
    let parameter_size = tag
        .split(['-', '_'])
        .find_map(|part| part.strip_suffix('b').filter(|n| n.parse::<f64>().is_ok()))
        .map_or_else(|| "1.2B".to_owned(), |n| format!("{n}B"));
    ModelDetails {
        parent_model: String::new(),
        format: "gguf".into(),
        families: vec![family.clone()],
        family,
        parameter_size,
        quantization_level: "Q4_K_M".into(),
    }
}

#[derive(Debug)]
struct Loaded {
    generation: u64,
    in_use: usize,
    /// None while in use or when kept forever.
    expires_at: Option<Instant>,
    keep_alive: KeepAlive,
    served: u64,
    leaked_bytes: f64,
}

/// How a request hands its model back.
#[derive(Clone, Copy, Debug)]
pub enum Release {
    /// The request completed: count it, leak VRAM, maybe force an eviction.
    Completed { leak_bytes: f64, evict_every: Option<u64> },
    /// The request went away early (client gone, shutdown): only drop the reference.
    Abandoned,
}

/// One loaded model as `/api/ps` and `/sim/state` show it.
#[derive(Clone, Debug)]
pub struct LoadedView {
    pub name: String,
    pub vram_bytes: u64,
    pub in_use: usize,
    pub expires_at: Option<Instant>,
    pub keep_alive: KeepAlive,
    pub served: u64,
    pub leaked_bytes: u64,
}

/// What a request finds when it looks for its model.
#[derive(Debug)]
pub enum Lookup {
    /// Loaded: the request holds a reference of this generation.
    Leased(u64),
    /// Being loaded for another request; the receiver's sender drops when that ends.
    Loading(watch::Receiver<()>),
    /// Neither: the request must get it loaded.
    Absent,
}

/// The loaded models plus load/unload counters.
#[derive(Debug, Default)]
pub struct Models {
    loaded: HashMap<String, Loaded>,
    /// Loads in progress. Dropping the sender (load done or abandoned) wakes the requests
    /// waiting for it, which then look again.
    loading: HashMap<String, watch::Sender<()>>,
    /// Requests in Ollama's pending queue: waiting for the loader to load their model.
    pub pending_loads: usize,
    next_generation: u64,
    completed: u64,
    pub loads: u64,
    pub unloads: u64,
    pub evictions: u64,
}

impl Models {
    /// Unloads models whose keep_alive ran out; done lazily whenever state is read.
    fn expire(&mut self, now: Instant) {
        let before = self.loaded.len();
        self.loaded.retain(|_, m| m.in_use > 0 || m.expires_at.is_none_or(|t| t > now));
        self.unloads += (before - self.loaded.len()) as u64;
    }

    /// Takes a reference on a loaded model, or says it is loading or absent. A request's
    /// keep_alive replaces the model's; without one the model keeps its own, as in
    /// Ollama's `useLoadedRunner`.
    pub fn lookup(&mut self, name: &str, keep_alive: Option<KeepAlive>) -> Lookup {
        self.expire(Instant::now());
        if let Some(m) = self.loaded.get_mut(name) {
            m.in_use += 1;
            m.expires_at = None;
            if let Some(k) = keep_alive {
                m.keep_alive = k;
            }
            return Lookup::Leased(m.generation);
        }
        match self.loading.get(name) {
            Some(tx) => Lookup::Loading(tx.subscribe()),
            None => Lookup::Absent,
        }
    }

    /// Marks a model as loading, so requests for it wait for this load.
    pub fn begin_load(&mut self, name: &str) {
        self.loading.insert(name.to_owned(), watch::Sender::new(()));
    }

    /// Ends a load that did not finish (shutdown, client gone): its waiters look again.
    pub fn abandon_load(&mut self, name: &str) {
        self.loading.remove(name);
    }

    /// Records a finished load and takes the first reference on it; wakes the requests
    /// that waited for it.
    pub fn insert_loaded(&mut self, name: &str, keep_alive: KeepAlive) -> u64 {
        self.loading.remove(name);
        self.next_generation += 1;
        self.loads += 1;
        let generation = self.next_generation;
        let model = Loaded {
            generation,
            in_use: 1,
            expires_at: None,
            keep_alive,
            served: 0,
            leaked_bytes: 0.0,
        };
        self.loaded.insert(name.to_owned(), model);
        generation
    }

    /// Drops a reference; the last one starts the keep_alive clock (or unloads at once
    /// for keep_alive 0). A reference to a model evicted meanwhile is ignored.
    pub fn release(&mut self, name: &str, generation: u64, how: Release) {
        let Some(m) = self.loaded.get_mut(name).filter(|m| m.generation == generation) else {
            return;
        };
        m.in_use = m.in_use.saturating_sub(1);
        if let Release::Completed { leak_bytes, evict_every } = how {
            m.served += 1;
            m.leaked_bytes += leak_bytes;
            self.completed += 1;
            if evict_every.is_some_and(|n| self.completed.is_multiple_of(n)) {
                self.loaded.remove(name);
                self.evictions += 1;
                return;
            }
        }
        if m.in_use == 0 {
            match m.keep_alive {
                KeepAlive::Forever => m.expires_at = None,
                KeepAlive::UnloadNow => {
                    self.loaded.remove(name);
                    self.unloads += 1;
                }
                KeepAlive::Idle(d) => m.expires_at = Some(Instant::now() + d),
            }
        }
    }

    /// Unloads a model now, as `keep_alive: 0` with an empty prompt asks; returns
    /// whether it was loaded.
    pub fn unload(&mut self, name: &str) -> bool {
        let gone = self.loaded.remove(name).is_some();
        self.unloads += u64::from(gone);
        gone
    }

    /// Forcibly unloads everything (`POST /sim/evict`); returns how many were loaded.
    pub fn evict_all(&mut self) -> usize {
        let n = self.loaded.len();
        self.loaded.clear();
        self.evictions += n as u64;
        n
    }

    /// Loaded models, sorted by name, with VRAM computed from the current config.
    pub fn view(&mut self, config: &SimConfig) -> Vec<LoadedView> {
        self.expire(Instant::now());
        let base =
            (config.vram_model_mb + config.vram_per_slot_mb * config.parallel as u64) as f64 * MIB;
        let mut out: Vec<LoadedView> = self
            .loaded
            .iter()
            .map(|(name, m)| LoadedView {
                name: name.clone(),
                vram_bytes: (base + m.leaked_bytes) as u64,
                in_use: m.in_use,
                expires_at: m.expires_at,
                keep_alive: m.keep_alive,
                served: m.served,
                leaked_bytes: m.leaked_bytes as u64,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// How long until a model expires, for display; `None` = in use or forever.
    pub fn remaining(expires_at: Option<Instant>) -> Option<Duration> {
        expires_at.map(|t| t.saturating_duration_since(Instant::now()))
    }
}

/// MiB as a float to bytes, for the leak setting.
pub fn mib_to_bytes(mib: f64) -> f64 {
    mib * MIB
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_details_look_like_ollama() {
        assert_eq!(normalize("llama3.2"), "llama3.2:latest");
        assert_eq!(normalize("llama3.2:1b"), "llama3.2:1b");
        assert_eq!(normalize("host:5000/ns/m"), "host:5000/ns/m:latest");
        assert_eq!(normalize("registry.ollama.ai/library/llama3.2:1b"), "llama3.2:1b");
        assert_eq!(normalize("library/llama3.2"), "llama3.2:latest");
        assert_eq!(normalize("me/m:q4"), "me/m:q4");
        let d = details("llama3.2:1b");
        assert_eq!((d.family.as_str(), d.parameter_size.as_str()), ("llama", "1B"));
        assert_eq!(digest("x").len(), 64);
    }

    #[test]
    fn keep_alive_zero_unloads_after_last_reference() {
        let mut m = Models::default();
        let g = m.insert_loaded("a", KeepAlive::UnloadNow);
        assert!(matches!(m.lookup("a", None), Lookup::Leased(g2) if g2 == g));
        m.release("a", g, Release::Abandoned);
        assert!(matches!(m.lookup("a", None), Lookup::Leased(_)));
        m.release("a", g, Release::Abandoned);
        m.release("a", g, Release::Abandoned);
        assert!(matches!(m.lookup("a", None), Lookup::Absent));
        assert_eq!(m.unloads, 1);
    }
}
