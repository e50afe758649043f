//! What the metrics service answers: one batch's metrics (`GET /v1/batches/{id}/metrics`) and the
//! multi-batch stability report (`GET /v1/reports/multi-batch`). The service computes them,
//! batchctl reads them.
//!
//! A figure that is not known is `null`, never 0. Every struct reads leniently
//! (`#[serde(default)]`): a field an older server leaves out takes its default, a field a newer one
//! adds is ignored, and a verdict status this crate does not know reads as `unknown`, so one odd
//! figure never loses a whole report. What is written is unchanged by this.

use serde::{Deserialize, Serialize};

/// Bytes in one reported GB: a GiB, the unit `nvidia-smi`'s MiB figures give when divided by 1024.
pub const BYTES_PER_GB: f64 = 1_073_741_824.0;

/// `GET /v1/batches/{id}/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BatchMetrics {
    /// Always [`BatchMetrics::OBJECT`].
    pub object: String,
    pub batch_id: String,
    /// The batch object's status at the latest lifecycle step seen.
    pub status: String,
    pub model: Option<String>,
    pub requests: RequestFigures,
    pub timing: Timing,
    pub tokens: Tokens,
    pub vram: BatchVram,
    pub error_types: Vec<ErrorType>,
    pub model_reloads: Reloads,
}

impl BatchMetrics {
    pub const OBJECT: &'static str = "batch.metrics";
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RequestFigures {
    pub total: u64,
    /// Once the batch is final: the gateway's counts; before: the workers' reports so far.
    pub completed: u64,
    pub failed: u64,
    /// `completed / total × 100`; `null` for an empty batch.
    pub success_pct: Option<f64>,
    /// Request lines the workers reported (each counted once, however often it ran).
    pub reported: u64,
}

/// Timestamps are Unix milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Timing {
    /// The `in_progress` step.
    pub started_at: Option<i64>,
    /// The final step (completed, failed, cancelled or expired).
    pub ended_at: Option<i64>,
    pub processing_seconds: Option<f64>,
    /// `(completed + failed) / processing_seconds`.
    pub throughput_rps: Option<f64>,
    /// `processing_seconds / (completed + failed)`.
    pub seconds_per_request: Option<f64>,
    /// Over the requests that reached the backend (all attempts of one request together).
    pub latency_mean_ms: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_max_ms: Option<f64>,
    /// From a chunk's arrival at the worker to the request's dispatch.
    pub queue_wait_mean_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tokens {
    pub prompt: Option<u64>,
    pub completion: Option<u64>,
    /// `null` when no request's cached-token count is known (Ollama does not report it).
    pub cached: Option<u64>,
    pub total: Option<u64>,
    /// Completion tokens per second of processing.
    pub tokens_per_second: Option<f64>,
    /// Cached / prompt tokens, over the requests whose cached count is known.
    pub cache_hit_rate: Option<f64>,
}

/// Failed requests with one error code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorType {
    pub code: String,
    pub count: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reloads {
    pub count: u64,
    pub reloads: Vec<Reload>,
}

/// One model load after warm-up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reload {
    pub worker_id: String,
    pub model: String,
    pub at: i64,
    pub load_ms: f64,
}

/// A batch's VRAM: each GPU, and the sums over the GPUs known both before and after.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BatchVram {
    /// `nvml`, `ollama_ps`, `mixed`, or `null` when no reading covers the batch.
    pub source: Option<String>,
    pub before_bytes: Option<i64>,
    pub after_bytes: Option<i64>,
    pub delta_bytes: Option<i64>,
    /// Sum of each GPU's peak.
    pub peak_bytes: Option<i64>,
    pub gpus: Vec<GpuVram>,
}

/// One GPU's VRAM over one batch, in bytes; `*_at` are Unix milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GpuVram {
    pub host: String,
    pub gpu: String,
    pub name: String,
    /// `nvml` (the whole GPU) or `ollama_ps` (the loaded models' footprint only).
    pub source: String,
    pub before_bytes: Option<i64>,
    pub before_at: Option<i64>,
    pub after_bytes: Option<i64>,
    pub after_at: Option<i64>,
    pub delta_bytes: Option<i64>,
    pub peak_bytes: Option<i64>,
    pub total_bytes: Option<i64>,
}

/// `GET /v1/reports/multi-batch`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MultiBatchReport {
    /// Always [`MultiBatchReport::OBJECT`].
    pub object: String,
    pub thresholds: Thresholds,
    pub totals: Totals,
    /// In the order asked for.
    pub batches: Vec<BatchLine>,
    pub vram: VramAnalysis,
    pub throughput: ThroughputAnalysis,
    pub model_reloads: ReloadAnalysis,
    pub success: SuccessAnalysis,
    /// Every criterion passed.
    pub pass: bool,
    /// Why, for each criterion that failed or could not be judged.
    pub failures: Vec<String>,
}

impl MultiBatchReport {
    pub const OBJECT: &'static str = "report.multi_batch";
}

/// The success criteria, also the report's query parameters of the same names.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Thresholds {
    /// The VRAM growth from the first batch's start to the last batch's end must stay below this.
    pub max_vram_delta_gb: f64,
    /// `(max − min) / max × 100` of the batches' throughput must stay below this.
    pub max_variance_pct: f64,
    /// Every batch's success rate must be at least this.
    pub min_success_pct: f64,
}

impl Default for Thresholds {
    /// The test plan's criteria, which the service applies to a parameter left out.
    fn default() -> Self {
        Self { max_vram_delta_gb: 0.5, max_variance_pct: 10.0, min_success_pct: 100.0 }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Totals {
    pub batches: u64,
    pub requests: u64,
    pub completed: u64,
    pub failed: u64,
    pub success_pct: Option<f64>,
    /// First batch's start to last batch's end (Unix ms), and the seconds between.
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub total_seconds: Option<f64>,
    /// Sum of the batches' processing times.
    pub processing_seconds: Option<f64>,
    /// `(completed + failed) / processing_seconds`.
    pub throughput_rps: Option<f64>,
    /// Failed requests of all batches by error code, most frequent first.
    pub error_types: Vec<ErrorType>,
}

/// One batch of the report; VRAM in GB of [`BYTES_PER_GB`] bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BatchLine {
    /// 1 for the first batch asked for.
    pub index: u64,
    pub batch_id: String,
    pub status: String,
    pub model: Option<String>,
    pub requests: u64,
    pub completed: u64,
    pub failed: u64,
    pub success_pct: Option<f64>,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub processing_seconds: Option<f64>,
    pub throughput_rps: Option<f64>,
    pub tokens_per_second: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub vram_before_gb: Option<f64>,
    pub vram_after_gb: Option<f64>,
    pub vram_delta_gb: Option<f64>,
    pub vram_peak_gb: Option<f64>,
    pub model_reloads: u64,
    pub error_types: Vec<ErrorType>,
}

/// Whether a criterion holds; `unknown` when a figure it needs is missing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    /// Also what a status this crate does not know reads as.
    #[default]
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Verdict {
    pub status: Status,
    /// Set unless the criterion passed.
    pub reason: Option<String>,
}

impl Verdict {
    pub fn pass() -> Self {
        Self { status: Status::Pass, reason: None }
    }

    pub fn fail(reason: String) -> Self {
        Self { status: Status::Fail, reason: Some(reason) }
    }

    pub fn unknown(reason: String) -> Self {
        Self { status: Status::Unknown, reason: Some(reason) }
    }

    pub fn passed(&self) -> bool {
        self.status == Status::Pass
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VramAnalysis {
    /// Always `GiB`: 1 GB here is [`BYTES_PER_GB`] bytes.
    pub unit: String,
    pub bytes_per_gb: f64,
    /// `nvml`, `ollama_ps` (models' footprint only), `mixed`, or `null` without readings.
    pub source: Option<String>,
    /// The first batch's before, the last batch's after, and the difference.
    pub start_gb: Option<f64>,
    pub end_gb: Option<f64>,
    pub delta_gb: Option<f64>,
    /// Least-squares slope of each batch's after-VRAM over the batch index, GB per batch.
    pub trend_gb_per_batch: Option<f64>,
    /// Set when VRAM grew in every batch, even if by less than the threshold.
    pub warning: Option<String>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ThroughputAnalysis {
    pub min_rps: Option<f64>,
    pub max_rps: Option<f64>,
    pub mean_rps: Option<f64>,
    /// Sample standard deviation; `null` below two batches.
    pub std_dev_rps: Option<f64>,
    /// `(max − min) / max × 100`, the test plan's "Variance".
    pub variance_pct: Option<f64>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReloadAnalysis {
    pub total: u64,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SuccessAnalysis {
    /// Over all batches.
    pub success_pct: Option<f64>,
    /// The lowest batch's.
    pub min_batch_success_pct: Option<f64>,
    pub verdict: Verdict,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn missing_fields_default_and_unknown_ones_are_ignored() {
        let m: BatchMetrics = serde_json::from_value(json!({
            "status": "completed",
            "timing": {"processing_seconds": 2.5},
            "added_later": {"x": 1}
        }))
        .unwrap();
        assert_eq!(m.status, "completed");
        assert_eq!(m.timing.processing_seconds, Some(2.5));
        assert_eq!(m.timing.started_at, None);
        assert!(m.error_types.is_empty());
    }

    #[test]
    fn an_unknown_verdict_status_reads_as_unknown() {
        let v: Verdict = serde_json::from_value(json!({"status": "flaky", "reason": "r"})).unwrap();
        assert_eq!(v.status, Status::Unknown);
        let v: Verdict = serde_json::from_value(json!({"status": "fail"})).unwrap();
        assert_eq!(v, Verdict { status: Status::Fail, reason: None });
        assert_eq!(
            serde_json::to_value(Verdict::pass()).unwrap(),
            json!({"status": "pass", "reason": null})
        );
    }

    #[test]
    fn thresholds_left_out_are_the_test_plans() {
        let t: Thresholds = serde_json::from_value(json!({"max_variance_pct": 5.0})).unwrap();
        assert_eq!(t, Thresholds { max_variance_pct: 5.0, ..Thresholds::default() });
    }
}
