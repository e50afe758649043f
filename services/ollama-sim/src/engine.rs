//! One simulated inference: faults, model load (via the scheduler), slot, service time,
//! release.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::config::SimConfig;
use crate::error::ApiError;
use crate::keep_alive::KeepAlive;
use crate::models::{self, Release};
use crate::state::SimState;

/// The work one request asks of the "GPU".
#[derive(Clone, Debug)]
pub struct Job {
    /// Normalised model name.
    pub model: String,
    /// The request's keep_alive; `None` keeps the model's own.
    pub keep_alive: Option<KeepAlive>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// Simulated durations, reported in the response in nanoseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timings {
    pub total: Duration,
    pub load: Duration,
    pub prompt_eval: Duration,
    pub eval: Duration,
}

/// Counts a gauge up for as long as it lives, whether the request completes or not.
struct Gauge<'a>(&'a AtomicU64);

impl<'a> Gauge<'a> {
    fn new(a: &'a AtomicU64) -> Self {
        a.fetch_add(1, Ordering::SeqCst);
        Self(a)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl SimState {
    /// Runs one inference through the whole timing and fault model.
    pub(crate) async fn run(&self, job: &Job) -> Result<Timings, ApiError> {
        let start = Instant::now();
        let config = self.config();
        let counters = &self.0.counters;
        let seq = counters.requests.fetch_add(1, Ordering::SeqCst) + 1;
        let faults = self.roll_faults(&config);
        if faults.drop {
            counters.drops_injected.fetch_add(1, Ordering::SeqCst);
            return Err(ApiError::DropConnection);
        }
        if faults.error {
            counters.errors_injected.fetch_add(1, Ordering::SeqCst);
            return Err(ApiError::Injected);
        }
        if let Some(hang) = faults.hang {
            // Hangs outside a slot: it models a stalled response, not a stuck GPU, so
            // other requests keep flowing while the client's timeout runs out.
            counters.hangs_injected.fetch_add(1, Ordering::SeqCst);
            self.sleep(hang).await?;
        }

        // As in Ollama: the scheduler gets the model loaded, then the runner's semaphore
        // hands out a slot; the lease keeps the model loaded while the request waits.
        let (lease, load) = self.lease(&job.model, job.keep_alive, &config).await?;
        let _slot = self.acquire_slot(&job.model).await?;
        let _in_flight = Gauge::new(&counters.in_flight);

        let mut factor = faults.slow_factor;
        if faults.slow_factor != 1.0 {
            counters.slow_tails_injected.fetch_add(1, Ordering::SeqCst);
        }
        if config.throttle_after.is_some_and(|n| seq > n) {
            factor *= config.throttle_factor;
        }
        let (prompt_eval, eval) = service_time(&config, job, factor);
        self.sleep(prompt_eval + eval).await?;

        let leak_bytes = models::mib_to_bytes(config.vram_leak_mb_per_request);
        lease.finish(Release::Completed { leak_bytes, evict_every: config.evict_every });
        counters.completed.fetch_add(1, Ordering::SeqCst);
        Ok(Timings { total: start.elapsed(), load, prompt_eval, eval })
    }

    /// Ollama's "load the model" request (empty prompt or no messages): loads if
    /// needed (queueing like any load), takes no slot, sets keep_alive.
    pub(crate) async fn load_only(
        &self,
        model: &str,
        keep_alive: Option<KeepAlive>,
    ) -> Result<Timings, ApiError> {
        let start = Instant::now();
        let config = self.config();
        let (lease, load) = self.lease(model, keep_alive, &config).await?;
        lease.finish(Release::Abandoned);
        Ok(Timings { total: start.elapsed(), load, ..Timings::default() })
    }

    /// Ollama's "unload" request (empty prompt with keep_alive 0).
    pub(crate) fn unload(&self, model: &str) -> bool {
        self.models().unload(model)
    }
}

/// Prompt and generation time: tokens over per-slot speeds, or `latency_ms` split in
/// the same proportion, times the fault/throttle factor.
fn service_time(config: &SimConfig, job: &Job, factor: f64) -> (Duration, Duration) {
    let prompt_s = job.prompt_tokens as f64 / config.prompt_tokens_per_sec;
    let gen_s = job.completion_tokens as f64 / config.gen_tokens_per_sec;
    let total_s = config.latency_ms.map_or(prompt_s + gen_s, |ms| ms as f64 / 1000.0) * factor;
    let prompt_share = if prompt_s + gen_s > 0.0 { prompt_s / (prompt_s + gen_s) } else { 0.0 };
    let secs = |s: f64| Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX / 4);
    let total = secs(total_s);
    let prompt = secs(total_s * prompt_share).min(total);
    (prompt, total - prompt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_overrides_token_rates_and_factor_scales() {
        let job =
            Job { model: "m".into(), keep_alive: None, prompt_tokens: 40, completion_tokens: 30 };
        let config = SimConfig {
            prompt_tokens_per_sec: 400.0,
            gen_tokens_per_sec: 100.0,
            ..SimConfig::default()
        };
        let (p, e) = service_time(&config, &job, 1.0);
        assert_eq!((p.as_millis(), e.as_millis()), (100, 300));
        let fixed = SimConfig { latency_ms: Some(80), ..config };
        let (p, e) = service_time(&fixed, &job, 2.0);
        assert!((p + e).abs_diff(Duration::from_millis(160)) < Duration::from_micros(1));
        assert!(p < e);
    }
}
