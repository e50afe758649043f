//! Typed views of the metrics service's answers, for the summary and the HTML report. Every field
//! is optional: the service may leave a figure out (`null`) or add new ones, and the results file
//! keeps its JSON verbatim anyway.

use serde::Deserialize;

/// How a criterion turned out: `pass`, `fail` or `unknown`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Verdict {
    pub status: String,
    pub reason: Option<String>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.status == "pass"
    }

    /// `✅`, `❌`, or `❔` when the figures to judge were missing.
    pub fn mark(&self) -> &'static str {
        match self.status.as_str() {
            "pass" => "✅",
            "fail" => "❌",
            _ => "❔",
        }
    }
}

/// `GET /v1/reports/multi-batch` (object `report.multi_batch`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Report {
    pub thresholds: Thresholds,
    pub totals: Totals,
    pub batches: Vec<BatchLine>,
    pub vram: VramAnalysis,
    pub throughput: ThroughputAnalysis,
    pub model_reloads: ReloadAnalysis,
    pub success: SuccessAnalysis,
    pub pass: bool,
    pub failures: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct Thresholds {
    pub max_vram_delta_gb: f64,
    pub max_variance_pct: f64,
    pub min_success_pct: f64,
}

impl Thresholds {
    /// As the metrics service's query parameters.
    pub fn query(&self) -> [(&'static str, f64); 3] {
        [
            ("max_vram_delta_gb", self.max_vram_delta_gb),
            ("max_variance_pct", self.max_variance_pct),
            ("min_success_pct", self.min_success_pct),
        ]
    }
}

impl Default for Thresholds {
    /// The test plan's success criteria.
    fn default() -> Self {
        Self { max_vram_delta_gb: 0.5, max_variance_pct: 10.0, min_success_pct: 100.0 }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Totals {
    pub batches: u64,
    pub requests: u64,
    pub completed: u64,
    pub failed: u64,
    pub success_pct: Option<f64>,
    pub total_seconds: Option<f64>,
    pub processing_seconds: Option<f64>,
    pub throughput_rps: Option<f64>,
    pub error_types: Vec<ErrorType>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BatchLine {
    pub index: u64,
    pub batch_id: String,
    pub status: String,
    pub requests: u64,
    pub completed: u64,
    pub failed: u64,
    pub processing_seconds: Option<f64>,
    pub throughput_rps: Option<f64>,
    pub vram_before_gb: Option<f64>,
    pub vram_after_gb: Option<f64>,
    pub vram_delta_gb: Option<f64>,
    pub vram_peak_gb: Option<f64>,
    pub model_reloads: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct VramAnalysis {
    pub source: Option<String>,
    pub start_gb: Option<f64>,
    pub end_gb: Option<f64>,
    pub delta_gb: Option<f64>,
    pub trend_gb_per_batch: Option<f64>,
    pub warning: Option<String>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ThroughputAnalysis {
    pub min_rps: Option<f64>,
    pub max_rps: Option<f64>,
    pub mean_rps: Option<f64>,
    pub std_dev_rps: Option<f64>,
    pub variance_pct: Option<f64>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ReloadAnalysis {
    pub total: u64,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SuccessAnalysis {
    pub success_pct: Option<f64>,
    pub min_batch_success_pct: Option<f64>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ErrorType {
    pub code: String,
    pub count: u64,
}

/// `GET /v1/batches/{id}/metrics` (object `batch.metrics`): the parts the report shows.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BatchMetrics {
    pub status: String,
    pub timing: Timing,
    pub tokens: Tokens,
    pub vram: BatchVram,
    pub error_types: Vec<ErrorType>,
    pub model_reloads: Reloads,
}

impl BatchMetrics {
    /// Whether the metrics service has seen the batch's final lifecycle step.
    pub fn is_final(&self) -> bool {
        matches!(self.status.as_str(), "completed" | "failed" | "cancelled" | "expired")
    }
}

/// Unix milliseconds and milliseconds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Timing {
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub processing_seconds: Option<f64>,
    pub throughput_rps: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Tokens {
    pub prompt: Option<u64>,
    pub completion: Option<u64>,
    pub cached: Option<u64>,
    pub tokens_per_second: Option<f64>,
    pub cache_hit_rate: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BatchVram {
    pub peak_bytes: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Reloads {
    pub count: u64,
}

/// Parses a view out of JSON the results file kept; anything unreadable reads as empty.
pub fn parse<T: serde::de::DeserializeOwned + Default>(value: &serde_json::Value) -> T {
    serde_json::from_value(value.clone()).unwrap_or_default()
}
