//! The simulator's settings: timing model, model/VRAM model and fault injection.

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::keep_alive::KeepAlive;

/// Everything the simulator can be told, from flags (`OLLAMA_SIM_*` env vars) or built
/// in a test. `Default` matches the flag defaults; the same fields can be patched at
/// runtime through `POST /sim/config`.
#[derive(Args, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Requests served concurrently per loaded model, like OLLAMA_NUM_PARALLEL (default 1,
    /// as in Ollama). More requests for a loaded model wait for a slot, without bound.
    #[arg(long, env = "OLLAMA_SIM_PARALLEL", default_value_t = 1)]
    pub parallel: usize,
    /// Requests that may wait for a model to be loaded (loads go one at a time); beyond
    /// that the sim answers 503 "server busy", like OLLAMA_MAX_QUEUE. Requests for a
    /// loaded model never count here and never get that 503.
    #[arg(long, env = "OLLAMA_SIM_MAX_QUEUE", default_value_t = 512)]
    pub max_queue: usize,
    /// Fixed service time per request, overriding the token-rate model (0 answers immediately).
    #[arg(long, env = "OLLAMA_SIM_LATENCY_MS")]
    pub latency_ms: Option<u64>,
    /// Prompt processing speed of one slot, in tokens per second.
    #[arg(long, env = "OLLAMA_SIM_PROMPT_TOKENS_PER_SEC", default_value_t = 4000.0)]
    pub prompt_tokens_per_sec: f64,
    /// Generation speed of one slot, in tokens per second.
    #[arg(long, env = "OLLAMA_SIM_GEN_TOKENS_PER_SEC", default_value_t = 120.0)]
    pub gen_tokens_per_sec: f64,
    /// Time to load a model that is not loaded; paid by the request that finds it unloaded.
    #[arg(long, env = "OLLAMA_SIM_LOAD_MS", default_value_t = 2000)]
    pub load_ms: u64,
    /// Default keep_alive when a request gives none ("5m", "-1", "0", seconds).
    #[arg(long, env = "OLLAMA_SIM_KEEP_ALIVE", default_value = "5m")]
    pub keep_alive: KeepAlive,
    /// Models the sim "has" (listed by /api/tags), comma-separated.
    #[arg(long, env = "OLLAMA_SIM_MODELS", value_delimiter = ',', default_value = "llama3.2:1b")]
    pub models: Vec<String>,
    /// Accept any model name, not only `--models`. Off by default, like Ollama: a model
    /// not in `--models` (or pulled through /api/pull) gets Ollama's 404.
    #[arg(long, env = "OLLAMA_SIM_ANY_MODEL", default_value_t = false, action = clap::ArgAction::Set)]
    pub any_model: bool,
    /// Dimension of the vectors /api/embed returns.
    #[arg(long, env = "OLLAMA_SIM_EMBED_DIM", default_value_t = 384)]
    pub embed_dim: usize,
    /// Simulated VRAM of a loaded model's weights, in MiB.
    #[arg(long, env = "OLLAMA_SIM_VRAM_MODEL_MB", default_value_t = 2048)]
    pub vram_model_mb: u64,
    /// Simulated KV cache per parallel slot, in MiB.
    #[arg(long, env = "OLLAMA_SIM_VRAM_PER_SLOT_MB", default_value_t = 64)]
    pub vram_per_slot_mb: u64,
    /// VRAM leaked per completed request while the model stays loaded, in MiB.
    #[arg(long, env = "OLLAMA_SIM_VRAM_LEAK_MB_PER_REQUEST", default_value_t = 0.0)]
    pub vram_leak_mb_per_request: f64,
    /// Fraction of requests answered 500 "simulated backend error".
    #[arg(long, env = "OLLAMA_SIM_ERROR_RATE", default_value_t = 0.0)]
    pub error_rate: f64,
    /// Fraction of requests that hang for `hang_ms` before answering.
    #[arg(long, env = "OLLAMA_SIM_TIMEOUT_RATE", default_value_t = 0.0)]
    pub timeout_rate: f64,
    /// How long a hanging request hangs.
    #[arg(long, env = "OLLAMA_SIM_HANG_MS", default_value_t = 120_000)]
    pub hang_ms: u64,
    /// Fraction of requests whose service time is multiplied by `slow_tail_factor`.
    #[arg(long, env = "OLLAMA_SIM_SLOW_TAIL_RATE", default_value_t = 0.0)]
    pub slow_tail_rate: f64,
    /// Service-time multiplier for slow-tail requests.
    #[arg(long, env = "OLLAMA_SIM_SLOW_TAIL_FACTOR", default_value_t = 10.0)]
    pub slow_tail_factor: f64,
    /// Fraction of requests whose connection is closed without any HTTP answer.
    #[arg(long, env = "OLLAMA_SIM_DROP_RATE", default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Forcibly unload the model after every N-th completed request.
    #[arg(long, env = "OLLAMA_SIM_EVICT_EVERY")]
    pub evict_every: Option<u64>,
    /// After this many requests, multiply service time by `throttle_factor`.
    #[arg(long, env = "OLLAMA_SIM_THROTTLE_AFTER")]
    pub throttle_after: Option<u64>,
    /// Service-time multiplier once throttled.
    #[arg(long, env = "OLLAMA_SIM_THROTTLE_FACTOR", default_value_t = 4.0)]
    pub throttle_factor: f64,
    /// Seed of the fault RNG, so a run's faults are reproducible.
    #[arg(long, env = "OLLAMA_SIM_FAULT_SEED", default_value_t = 0)]
    pub fault_seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            parallel: 1,
            max_queue: 512,
            latency_ms: None,
            prompt_tokens_per_sec: 4000.0,
            gen_tokens_per_sec: 120.0,
            load_ms: 2000,
            keep_alive: KeepAlive::default(),
            models: vec!["llama3.2:1b".into()],
            any_model: false,
            embed_dim: 384,
            vram_model_mb: 2048,
            vram_per_slot_mb: 64,
            vram_leak_mb_per_request: 0.0,
            error_rate: 0.0,
            timeout_rate: 0.0,
            hang_ms: 120_000,
            slow_tail_rate: 0.0,
            slow_tail_factor: 10.0,
            drop_rate: 0.0,
            evict_every: None,
            throttle_after: None,
            throttle_factor: 4.0,
            fault_seed: 0,
        }
    }
}

/// A setting that cannot work; the message names the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{field} must be {expected}, got {value}")]
    OutOfRange { field: &'static str, expected: &'static str, value: String },
    #[error("invalid config patch: {0}")]
    BadPatch(String),
}

impl SimConfig {
    /// What most tests want: every request answers immediately, models load instantly,
    /// any model name is accepted and each model has 4 slots (unlike the Ollama-like
    /// defaults of 1 slot and known models only).
    pub fn zero_latency() -> Self {
        Self { latency_ms: Some(0), load_ms: 0, parallel: 4, any_model: true, ..Self::default() }
    }

    /// Fails on a setting that would make the simulator misbehave (zero slots, a rate
    /// outside 0..=1, a non-positive speed).
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn out(field: &'static str, expected: &'static str, value: impl ToString) -> ConfigError {
            ConfigError::OutOfRange { field, expected, value: value.to_string() }
        }
        if self.parallel == 0 {
            return Err(out("parallel", "at least 1", self.parallel));
        }
        for (field, v) in [
            ("error_rate", self.error_rate),
            ("timeout_rate", self.timeout_rate),
            ("slow_tail_rate", self.slow_tail_rate),
            ("drop_rate", self.drop_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(out(field, "between 0 and 1", v));
            }
        }
        for (field, v) in [
            ("slow_tail_factor", self.slow_tail_factor),
            ("throttle_factor", self.throttle_factor),
            ("vram_leak_mb_per_request", self.vram_leak_mb_per_request),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(out(field, "a finite number >= 0", v));
            }
        }
        for (field, v) in [
            ("prompt_tokens_per_sec", self.prompt_tokens_per_sec),
            ("gen_tokens_per_sec", self.gen_tokens_per_sec),
        ] {
            if !v.is_finite() || v <= 0.0 {
                return Err(out(field, "a finite number > 0", v));
            }
        }
        if !(1..=65_536).contains(&self.embed_dim) {
            return Err(out("embed_dim", "between 1 and 65536", self.embed_dim));
        }
        if self.evict_every == Some(0) {
            return Err(out("evict_every", "at least 1 when set", 0));
        }
        Ok(())
    }

    /// Applies a JSON merge patch (`{"error_rate":0.5,"latency_ms":null}`): named fields
    /// change, `null` clears an optional one, unknown fields are refused. The result is
    /// validated; on error nothing changes.
    pub fn patched(&self, patch: &serde_json::Value) -> Result<Self, ConfigError> {
        let serde_json::Value::Object(changes) = patch else {
            return Err(ConfigError::BadPatch("expected a JSON object".into()));
        };
        let mut merged =
            serde_json::to_value(self).map_err(|e| ConfigError::BadPatch(e.to_string()))?;
        let serde_json::Value::Object(fields) = &mut merged else {
            return Err(ConfigError::BadPatch("config is not an object".into()));
        };
        for (key, value) in changes {
            match fields.get_mut(key) {
                Some(slot) => *slot = value.clone(),
                None => return Err(ConfigError::BadPatch(format!("unknown field `{key}`"))),
            }
        }
        let next: Self =
            serde_json::from_value(merged).map_err(|e| ConfigError::BadPatch(e.to_string()))?;
        next.validate()?;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: SimConfig,
    }

    #[test]
    fn flag_defaults_match_default_impl() {
        let cli = Cli::try_parse_from(["ollama-sim"]).unwrap();
        assert_eq!(cli.config, SimConfig::default());
        SimConfig::default().validate().unwrap();
    }

    #[test]
    fn defaults_are_ollamas_and_zero_latency_keeps_test_friendly_ones() {
        let d = SimConfig::default();
        assert_eq!((d.parallel, d.max_queue, d.any_model), (1, 512, false));
        let z = SimConfig::zero_latency();
        assert_eq!((z.parallel, z.any_model, z.latency_ms, z.load_ms), (4, true, Some(0), 0));
    }

    #[test]
    fn patch_changes_named_fields_and_clears_nulls() {
        let base = SimConfig { latency_ms: Some(5), ..SimConfig::default() };
        let next = base
            .patched(&serde_json::json!({"error_rate": 0.5, "latency_ms": null, "keep_alive": -1}))
            .unwrap();
        assert_eq!(next.error_rate, 0.5);
        assert_eq!(next.latency_ms, None);
        assert_eq!(next.keep_alive, KeepAlive::Forever);
        assert!(base.patched(&serde_json::json!({"nope": 1})).is_err());
        assert!(base.patched(&serde_json::json!({"error_rate": 2.0})).is_err());
        assert!(base.patched(&serde_json::json!({"parallel": 0})).is_err());
    }
}
