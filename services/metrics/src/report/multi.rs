//! The multi-batch stability report of the test plan: totals, one line per batch, and a verdict
//! on each success criterion (VRAM leak, throughput variance, model reloads, success rate).
//!
//! VRAM is reported in GB of 2^30 bytes ([`BYTES_PER_GB`]), the unit `nvidia-smi`'s MiB figures
//! give when divided by 1024, which is how the plan's "10.35 GB" readings were taken.

use crate::stats;
use nightshift_shared::reports::{
    BYTES_PER_GB, BatchLine, BatchMetrics, ErrorType, MultiBatchReport, ReloadAnalysis,
    SuccessAnalysis, Thresholds, ThroughputAnalysis, Totals, Verdict, VramAnalysis,
};
use std::collections::BTreeMap;

fn gb(bytes: Option<i64>) -> Option<f64> {
    bytes.map(|b| b as f64 / BYTES_PER_GB)
}

/// Builds the report over `batches`, in their order.
pub fn evaluate(batches: &[BatchMetrics], thresholds: Thresholds) -> MultiBatchReport {
    let lines: Vec<BatchLine> = batches.iter().zip(1..).map(|(b, i)| line(i, b)).collect();
    let totals = totals(batches);
    let vram = vram(batches, &lines, thresholds);
    let throughput = throughput(&lines, thresholds);
    let model_reloads = reloads(&lines);
    let success = success(&lines, &totals, thresholds);
    let failures: Vec<String> =
        [&vram.verdict, &throughput.verdict, &model_reloads.verdict, &success.verdict]
            .into_iter()
            .filter_map(|v| v.reason.clone())
            .collect();
    MultiBatchReport {
        object: MultiBatchReport::OBJECT.into(),
        thresholds,
        pass: failures.is_empty() && !batches.is_empty(),
        failures,
        totals,
        batches: lines,
        vram,
        throughput,
        model_reloads,
        success,
    }
}

fn line(index: u64, b: &BatchMetrics) -> BatchLine {
    BatchLine {
        index,
        batch_id: b.batch_id.clone(),
        status: b.status.clone(),
        model: b.model.clone(),
        requests: b.requests.total,
        completed: b.requests.completed,
        failed: b.requests.failed,
        success_pct: b.requests.success_pct,
        started_at: b.timing.started_at,
        ended_at: b.timing.ended_at,
        processing_seconds: b.timing.processing_seconds,
        throughput_rps: b.timing.throughput_rps,
        tokens_per_second: b.tokens.tokens_per_second,
        latency_p95_ms: b.timing.latency_p95_ms,
        vram_before_gb: gb(b.vram.before_bytes),
        vram_after_gb: gb(b.vram.after_bytes),
        vram_delta_gb: gb(b.vram.delta_bytes),
        vram_peak_gb: gb(b.vram.peak_bytes),
        model_reloads: b.model_reloads.count,
        error_types: b.error_types.clone(),
    }
}

fn totals(batches: &[BatchMetrics]) -> Totals {
    let requests = batches.iter().map(|b| b.requests.total).sum();
    let completed = batches.iter().map(|b| b.requests.completed).sum();
    let failed: u64 = batches.iter().map(|b| b.requests.failed).sum();
    let all = |f: fn(&BatchMetrics) -> Option<i64>| -> Option<Vec<i64>> {
        batches.iter().map(f).collect()
    };
    let started_at = all(|b| b.timing.started_at).and_then(|v| v.into_iter().min());
    let ended_at = all(|b| b.timing.ended_at).and_then(|v| v.into_iter().max());
    let processing_seconds: Option<f64> = if batches.is_empty() {
        None
    } else {
        batches.iter().map(|b| b.timing.processing_seconds).sum()
    };
    let mut errors: BTreeMap<&str, u64> = BTreeMap::new();
    for e in batches.iter().flat_map(|b| &b.error_types) {
        *errors.entry(e.code.as_str()).or_default() += e.count;
    }
    let mut error_types: Vec<ErrorType> =
        errors.into_iter().map(|(code, count)| ErrorType { code: code.into(), count }).collect();
    error_types.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.code.cmp(&b.code)));
    Totals {
        batches: batches.len() as u64,
        requests,
        completed,
        failed,
        success_pct: stats::pct(completed, requests),
        started_at,
        ended_at,
        total_seconds: started_at.zip(ended_at).map(|(s, e)| (e - s).max(0) as f64 / 1000.0),
        processing_seconds,
        throughput_rps: processing_seconds
            .and_then(|secs| stats::ratio((completed + failed) as f64, secs)),
        error_types,
    }
}

fn vram(batches: &[BatchMetrics], lines: &[BatchLine], t: Thresholds) -> VramAnalysis {
    let start_gb = lines.first().and_then(|l| l.vram_before_gb);
    let end_gb = lines.last().and_then(|l| l.vram_after_gb);
    let delta_gb = start_gb.zip(end_gb).map(|(s, e)| e - s);
    let afters: Vec<(f64, f64)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| l.vram_after_gb.map(|a| (i as f64, a)))
        .collect();
    let trend = stats::slope(&afters);
    let mut sources: Vec<&str> = batches.iter().filter_map(|b| b.vram.source.as_deref()).collect();
    sources.sort_unstable();
    sources.dedup();
    let source = match sources.as_slice() {
        [] => None,
        [one] => Some((*one).to_owned()),
        _ => Some("mixed".to_owned()),
    };
    let every_batch_grew =
        lines.len() >= 2 && lines.iter().all(|l| l.vram_delta_gb.is_some_and(|d| d > 0.0));
    let warning = match (delta_gb, trend) {
        (Some(d), Some(slope)) if d > 0.0 && slope > 0.0 && every_batch_grew => Some(format!(
            "VRAM grew in every batch (+{d:.2} GB in total, {slope:+.2} GB per batch): possible \
             leak building up"
        )),
        _ => None,
    };
    let verdict = match delta_gb {
        None => Verdict::unknown(
            "VRAM: no reading before the first batch or after the last (no NVML and no Ollama \
             /api/ps samples?), cannot judge a leak"
                .into(),
        ),
        Some(d) if d < t.max_vram_delta_gb => Verdict::pass(),
        Some(d) => Verdict::fail(format!(
            "VRAM grew by {d:+.2} GB from the first batch's start to the last batch's end \
             (threshold {:.2} GB): possible memory leak",
            t.max_vram_delta_gb
        )),
    };
    VramAnalysis {
        unit: "GiB".into(),
        bytes_per_gb: BYTES_PER_GB,
        source,
        start_gb,
        end_gb,
        delta_gb,
        trend_gb_per_batch: trend,
        warning,
        verdict,
    }
}

fn throughput(lines: &[BatchLine], t: Thresholds) -> ThroughputAnalysis {
    let rates: Vec<f64> = lines.iter().filter_map(|l| l.throughput_rps).collect();
    let missing: Vec<&str> =
        lines.iter().filter(|l| l.throughput_rps.is_none()).map(|l| l.batch_id.as_str()).collect();
    let (min_rps, max_rps) = stats::min_max(&rates).unzip();
    let variance_pct = stats::variance_pct(&rates);
    let verdict = match variance_pct {
        _ if !missing.is_empty() => Verdict::unknown(format!(
            "throughput: no figure for {} (not ended, or nothing processed)",
            missing.join(", ")
        )),
        None => Verdict::unknown("throughput: no batch processed any request".into()),
        Some(v) if v < t.max_variance_pct => Verdict::pass(),
        Some(v) => Verdict::fail(format!(
            "throughput varies by {v:.1}% between batches ({:.3} to {:.3} req/s; threshold \
             {:.1}%)",
            min_rps.unwrap_or_default(),
            max_rps.unwrap_or_default(),
            t.max_variance_pct
        )),
    };
    ThroughputAnalysis {
        min_rps,
        max_rps,
        mean_rps: stats::mean(&rates),
        std_dev_rps: stats::std_dev(&rates),
        variance_pct,
        verdict,
    }
}

fn reloads(lines: &[BatchLine]) -> ReloadAnalysis {
    let total = lines.iter().map(|l| l.model_reloads).sum();
    let verdict = if total == 0 {
        Verdict::pass()
    } else {
        let per_batch: Vec<String> = lines
            .iter()
            .filter(|l| l.model_reloads > 0)
            .map(|l| format!("batch {} ({}): {}", l.index, l.batch_id, l.model_reloads))
            .collect();
        Verdict::fail(format!(
            "the model was reloaded {total} time{} ({}): keep_alive is not keeping it loaded",
            if total == 1 { "" } else { "s" },
            per_batch.join("; ")
        ))
    };
    ReloadAnalysis { total, verdict }
}

fn success(lines: &[BatchLine], totals: &Totals, t: Thresholds) -> SuccessAnalysis {
    let known: Vec<f64> = lines.iter().filter_map(|l| l.success_pct).collect();
    let min_batch = known.iter().copied().reduce(f64::min);
    let missing: Vec<&str> =
        lines.iter().filter(|l| l.success_pct.is_none()).map(|l| l.batch_id.as_str()).collect();
    let below: Vec<String> = lines
        .iter()
        .filter_map(|l| {
            let pct = l.success_pct?;
            (pct < t.min_success_pct).then(|| {
                let errors: Vec<String> =
                    l.error_types.iter().map(|e| format!("{} ×{}", e.code, e.count)).collect();
                let errors = if errors.is_empty() {
                    String::new()
                } else {
                    format!(": {}", errors.join(", "))
                };
                format!("{} {pct:.2}% ({} failed{errors})", l.batch_id, l.failed)
            })
        })
        .collect();
    let verdict = if !below.is_empty() {
        Verdict::fail(format!("success rate below {:.2}%: {}", t.min_success_pct, below.join("; ")))
    } else if !missing.is_empty() || lines.is_empty() {
        Verdict::unknown(format!("success rate: no requests in {}", missing.join(", ")))
    } else {
        Verdict::pass()
    };
    SuccessAnalysis { success_pct: totals.success_pct, min_batch_success_pct: min_batch, verdict }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nightshift_shared::reports::{BatchVram, Reloads, RequestFigures, Status, Timing, Tokens};

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-6)
    }

    /// A finished batch of 5,000 requests at `rps`, VRAM `before` → `after` GB.
    fn batch(id: &str, index: i64, rps: f64, before: f64, after: f64) -> BatchMetrics {
        let secs = 5000.0 / rps;
        let start = index * 10_000_000;
        let bytes = |gb: f64| (gb * BYTES_PER_GB).round() as i64;
        BatchMetrics {
            object: BatchMetrics::OBJECT.into(),
            batch_id: id.into(),
            status: "completed".into(),
            model: Some("m".into()),
            requests: RequestFigures {
                total: 5000,
                completed: 5000,
                failed: 0,
                success_pct: Some(100.0),
                reported: 5000,
            },
            timing: Timing {
                started_at: Some(start),
                ended_at: Some(start + (secs * 1000.0) as i64),
                processing_seconds: Some(secs),
                throughput_rps: Some(rps),
                seconds_per_request: Some(1.0 / rps),
                latency_mean_ms: None,
                latency_p50_ms: None,
                latency_p95_ms: None,
                latency_p99_ms: None,
                latency_max_ms: None,
                queue_wait_mean_ms: None,
            },
            tokens: Tokens {
                prompt: None,
                completion: None,
                cached: None,
                total: None,
                tokens_per_second: None,
                cache_hit_rate: None,
            },
            vram: BatchVram {
                source: Some("nvml".into()),
                before_bytes: Some(bytes(before)),
                after_bytes: Some(bytes(after)),
                delta_bytes: Some(bytes(after) - bytes(before)),
                peak_bytes: Some(bytes(after)),
                gpus: vec![],
            },
            error_types: vec![],
            model_reloads: Reloads { count: 0, reloads: vec![] },
        }
    }

    #[test]
    fn test_plan_good_run_passes_every_criterion() {
        let batches = [
            batch("b1", 0, 0.20, 10.35, 10.35),
            batch("b2", 1, 0.19, 10.35, 10.35),
            batch("b3", 2, 0.20, 10.35, 10.35),
        ];
        let r = evaluate(&batches, Thresholds::default());
        assert!(r.pass, "{:?}", r.failures);
        assert!(close(r.throughput.variance_pct, 5.0));
        assert!(close(r.throughput.min_rps, 0.19) && close(r.throughput.max_rps, 0.20));
        assert!(close(r.vram.start_gb, 10.35) && close(r.vram.end_gb, 10.35));
        assert!(close(r.vram.delta_gb, 0.0));
        assert!(close(r.vram.trend_gb_per_batch, 0.0));
        assert_eq!(r.vram.warning, None);
        assert_eq!(r.totals.requests, 15_000);
        assert!(close(r.totals.success_pct, 100.0));
        assert_eq!(r.batches.iter().map(|l| l.index).collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn test_plan_creeping_vram_passes_the_threshold_with_a_warning() {
        let batches = [
            batch("b1", 0, 0.20, 10.35, 10.50),
            batch("b2", 1, 0.20, 10.50, 10.65),
            batch("b3", 2, 0.20, 10.65, 10.80),
        ];
        let r = evaluate(&batches, Thresholds::default());
        assert!(close(r.vram.delta_gb, 0.45), "{:?}", r.vram.delta_gb);
        assert!(close(r.vram.trend_gb_per_batch, 0.15));
        assert_eq!(r.vram.verdict.status, Status::Pass);
        assert!(r.vram.warning.as_deref().unwrap().contains("+0.45 GB"));

        let strict = Thresholds { max_vram_delta_gb: 0.4, ..Thresholds::default() };
        let r = evaluate(&batches, strict);
        assert_eq!(r.vram.verdict.status, Status::Fail);
        assert!(!r.pass);
        assert!(r.failures[0].contains("+0.45 GB"), "{:?}", r.failures);
    }

    #[test]
    fn test_plan_degrading_throughput_fails_variance() {
        let batches = [
            batch("b1", 0, 0.20, 10.0, 10.0),
            batch("b2", 1, 0.18, 10.0, 10.0),
            batch("b3", 2, 0.16, 10.0, 10.0),
        ];
        let r = evaluate(&batches, Thresholds::default());
        assert!(close(r.throughput.variance_pct, 20.0));
        assert!(close(r.throughput.mean_rps, 0.18));
        assert!(close(r.throughput.std_dev_rps, 0.02));
        assert_eq!(r.throughput.verdict.status, Status::Fail);
        assert!(r.failures.iter().any(|f| f.contains("20.0%")), "{:?}", r.failures);
    }

    #[test]
    fn reloads_and_failures_fail_with_their_counts() {
        let mut b2 = batch("b2", 1, 0.20, 10.0, 10.0);
        b2.model_reloads.count = 2;
        b2.requests.completed = 4990;
        b2.requests.failed = 10;
        b2.requests.success_pct = Some(99.8);
        b2.error_types = vec![ErrorType { code: "backend_timeout".into(), count: 10 }];
        let r = evaluate(&[batch("b1", 0, 0.2, 10.0, 10.0), b2], Thresholds::default());
        assert_eq!(r.model_reloads.total, 2);
        assert_eq!(r.model_reloads.verdict.status, Status::Fail);
        assert_eq!(r.success.verdict.status, Status::Fail);
        assert!(close(r.success.min_batch_success_pct, 99.8));
        assert!(close(r.totals.success_pct, 9990.0 / 10000.0 * 100.0));
        assert_eq!(r.totals.error_types[0].code, "backend_timeout");
        assert!(r.failures.iter().any(|f| f.contains("reloaded 2 times")), "{:?}", r.failures);
        assert!(r.failures.iter().any(|f| f.contains("backend_timeout ×10")), "{:?}", r.failures);
    }

    #[test]
    fn missing_figures_are_unknown_not_passed() {
        let mut b = batch("b1", 0, 0.2, 10.0, 10.0);
        b.vram.before_bytes = None;
        b.timing.throughput_rps = None;
        let r = evaluate(&[b], Thresholds::default());
        assert_eq!(r.vram.verdict.status, Status::Unknown);
        assert_eq!(r.throughput.verdict.status, Status::Unknown);
        assert!(!r.pass);
        assert_eq!(r.failures.len(), 2);
    }
}
