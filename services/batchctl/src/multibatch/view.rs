//! Reading the metrics service's answers, whose shapes are [`nightshift_shared::reports`], for the
//! summary and the HTML report. Those types read leniently: a figure the service leaves out takes
//! its default and one it adds is ignored; the results file keeps the JSON verbatim anyway.

use nightshift_shared::openai::BatchStatus;
use nightshift_shared::reports::{BatchMetrics, Status, Thresholds, Verdict};

/// Parses a view out of JSON the results file kept; anything unreadable reads as empty.
pub fn parse<T: serde::de::DeserializeOwned + Default>(value: &serde_json::Value) -> T {
    serde_json::from_value(value.clone()).unwrap_or_default()
}

/// `✅`, `❌`, or `❔` when the figures to judge were missing.
pub fn mark(verdict: &Verdict) -> &'static str {
    match verdict.status {
        Status::Pass => "✅",
        Status::Fail => "❌",
        Status::Unknown => "❔",
    }
}

/// `thresholds` as the query parameters of `GET /v1/reports/multi-batch`.
pub fn query(thresholds: &Thresholds) -> [(&'static str, f64); 3] {
    [
        ("max_vram_delta_gb", thresholds.max_vram_delta_gb),
        ("max_variance_pct", thresholds.max_variance_pct),
        ("min_success_pct", thresholds.min_success_pct),
    ]
}

/// Whether the metrics service has seen the batch's final lifecycle step.
pub fn is_final(metrics: &BatchMetrics) -> bool {
    BatchStatus::parse(&metrics.status).is_some_and(BatchStatus::is_terminal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nightshift_shared::reports::MultiBatchReport;
    use serde_json::json;

    #[test]
    fn a_report_missing_figures_still_reads() {
        let r: MultiBatchReport = parse(&json!({
            "pass": false,
            "vram": {"delta_gb": 0.7, "verdict": {"status": "fail", "reason": "leak"}},
            "batches": [{"index": 1, "batch_id": "b1"}]
        }));
        assert_eq!(r.vram.delta_gb, Some(0.7));
        assert_eq!(mark(&r.vram.verdict), "❌");
        assert_eq!(mark(&r.throughput.verdict), "❔");
        assert_eq!(r.batches[0].batch_id, "b1");
        assert_eq!(r.thresholds, Thresholds::default());
    }

    #[test]
    fn only_a_terminal_status_is_final() {
        let m = |status: &str| BatchMetrics { status: status.into(), ..BatchMetrics::default() };
        assert!(is_final(&m("cancelled")));
        assert!(!is_final(&m("in_progress")));
        assert!(!is_final(&m("")));
    }
}
