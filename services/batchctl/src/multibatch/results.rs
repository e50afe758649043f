//! The results file of a multi-batch run, `multi_batch_results_<stamp>.json`: the test plan's
//! fields, everything the metrics service knows about each batch, the VRAM timeline batchctl
//! sampled, and the verdicts. The HTML report is drawn from it alone.

use super::view;
use nightshift_shared::openai::{Batch, BatchStatus};
use nightshift_shared::reports::{BYTES_PER_GB, BatchMetrics, Thresholds, Timing};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A whole run. See the README's "Multi-batch results file" section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResults {
    /// When the run started, `2025-10-27T14:03:09Z`.
    pub timestamp: String,
    /// Batches asked for (`--batches`); `results` is shorter if the run stopped early.
    pub num_batches: u64,
    pub input_file: String,
    pub endpoint: String,
    pub gateway_url: String,
    pub metrics_url: String,
    pub thresholds: Thresholds,
    /// Ctrl-C stopped the run; what was measured until then is here.
    pub interrupted: bool,
    pub results: Vec<BatchResult>,
    /// Total VRAM in use over the run, one point per new reading of `GET /v1/gpus`.
    pub vram_timeline: Vec<VramPoint>,
    /// `GET /v1/reports/multi-batch` over the batches that ended, verbatim; `null` if it could
    /// not be fetched.
    pub report: Option<serde_json::Value>,
    /// Every criterion passed, every batch asked for completed, and the run was not interrupted.
    pub pass: bool,
    /// Why not, one line per failed or unjudged criterion.
    pub failures: Vec<String>,
}

/// One batch of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchResult {
    pub batch_id: String,
    /// 1 for the first batch; also the batch's `test_batch_num` metadata.
    pub batch_num: u64,
    /// The gateway's status when batchctl last saw it.
    pub status: String,
    pub request_counts: RequestCounts,
    /// Processing time, from `in_progress` to the final status (the metrics service's
    /// millisecond timestamps; the gateway's seconds when the metrics service has none).
    pub elapsed_seconds: Option<f64>,
    /// `(completed + failed) / elapsed_seconds`: the report's throughput for the batch.
    pub rate_per_second: Option<f64>,
    /// Total VRAM (GB = 2^30 bytes, summed over every GPU of `GET /v1/gpus`) read just before
    /// the upload and just after the batch ended; `null` when no GPU reported any.
    pub vram_before_gb: Option<f64>,
    pub vram_after_gb: Option<f64>,
    pub vram_delta_gb: Option<f64>,
    /// Unix milliseconds of the batch's start (`in_progress`) and end.
    pub started_at_ms: Option<i64>,
    pub ended_at_ms: Option<i64>,
    /// `GET /v1/batches/{id}/metrics` verbatim (peak VRAM, latency percentiles, tokens, cache
    /// hit rate, error types, reloads); `null` if the metrics service did not know the batch.
    pub metrics: Option<serde_json::Value>,
}

impl BatchResult {
    /// A batch just created.
    pub fn new(batch: &Batch, batch_num: u64, vram_before: Option<VramPoint>) -> Self {
        let mut result = Self {
            batch_id: batch.id.clone(),
            batch_num,
            status: String::new(),
            request_counts: RequestCounts::default(),
            elapsed_seconds: None,
            rate_per_second: None,
            vram_before_gb: vram_before.map(|p| gb(p.used_bytes)),
            vram_after_gb: None,
            vram_delta_gb: None,
            started_at_ms: None,
            ended_at_ms: None,
            metrics: None,
        };
        result.update_from_gateway(batch);
        result
    }

    /// Takes status and counts from the gateway, and its (whole-second) times until the metrics
    /// service's are known.
    pub fn update_from_gateway(&mut self, batch: &Batch) {
        let c = &batch.request_counts;
        self.status = batch.status.as_str().to_owned();
        self.request_counts =
            RequestCounts { total: c.total, completed: c.completed, failed: c.failed };
        if self.metrics_timing().is_some() {
            return;
        }
        let started = batch.in_progress_at.unwrap_or(batch.created_at);
        self.started_at_ms = Some(started * 1000);
        let ended = match batch.status {
            BatchStatus::Completed => batch.completed_at,
            BatchStatus::Failed => batch.failed_at,
            BatchStatus::Cancelled => batch.cancelled_at,
            BatchStatus::Expired => batch.expired_at,
            _ => None,
        };
        self.ended_at_ms = ended.map(|e| e * 1000);
        self.elapsed_seconds = ended.map(|e| (e - started).max(0) as f64);
        let done = (c.completed + c.failed) as f64;
        self.rate_per_second = self.elapsed_seconds.filter(|s| *s > 0.0).map(|s| done / s);
    }

    /// Keeps the metrics service's figures for the batch and takes its times, which are exact
    /// to the millisecond and the ones the report judges.
    pub fn apply_metrics(&mut self, metrics: serde_json::Value) {
        self.metrics = Some(metrics);
        if let Some(t) = self.metrics_timing() {
            self.started_at_ms = t.started_at.or(self.started_at_ms);
            self.ended_at_ms = t.ended_at.or(self.ended_at_ms);
            self.elapsed_seconds = t.processing_seconds;
            self.rate_per_second = t.throughput_rps;
        }
    }

    pub fn set_vram_after(&mut self, reading: Option<VramPoint>) {
        self.vram_after_gb = reading.map(|p| gb(p.used_bytes));
        self.vram_delta_gb = self.vram_before_gb.zip(self.vram_after_gb).map(|(b, a)| a - b);
    }

    /// The metrics service's timing, once it has seen the batch end.
    fn metrics_timing(&self) -> Option<Timing> {
        let m: BatchMetrics = view::parse(self.metrics.as_ref()?);
        m.timing.processing_seconds.is_some().then_some(m.timing)
    }

    pub fn is_final(&self) -> bool {
        matches!(self.status.as_str(), "completed" | "failed" | "cancelled" | "expired")
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounts {
    pub total: u64,
    pub completed: u64,
    pub failed: u64,
}

/// Total VRAM in use at `t` (Unix milliseconds of the newest GPU reading).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VramPoint {
    pub t: i64,
    pub used_bytes: i64,
}

/// `bytes` in GB, as the metrics service counts them.
pub fn gb(bytes: i64) -> f64 {
    bytes as f64 / BYTES_PER_GB
}

/// The two files a run writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub json: PathBuf,
    pub html: PathBuf,
}

/// `multi_batch_results_<stamp>.json` and `multi_batch_report_<stamp>.html` in `dir`.
pub fn paths(dir: &Path, stamp: &str) -> Written {
    Written {
        json: dir.join(format!("multi_batch_results_{stamp}.json")),
        html: dir.join(format!("multi_batch_report_{stamp}.html")),
    }
}

/// Writes the results JSON and its HTML report.
pub fn write(results: &RunResults, to: &Written) -> anyhow::Result<()> {
    use anyhow::Context;
    let json = serde_json::to_vec_pretty(results).context("encoding the results")?;
    std::fs::write(&to.json, json).with_context(|| format!("writing {}", to.json.display()))?;
    let html = super::html::render(results, file_name(&to.json));
    std::fs::write(&to.html, html).with_context(|| format!("writing {}", to.html.display()))?;
    Ok(())
}

fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
}
