//! The FINAL MULTI-BATCH SUMMARY of the test plan, printed at the end of a run.

use super::results::RunResults;
use super::view;
use crate::format::thousands;
use nightshift_shared::reports::{MultiBatchReport, Status, Verdict};

const RULE: &str = "============================================================";

/// The summary of `results`, whose report (if any) the verdicts come from.
pub fn render(results: &RunResults) -> String {
    let report: MultiBatchReport = results.report.as_ref().map(view::parse).unwrap_or_default();
    let mut out = Vec::new();
    out.push(RULE.to_owned());
    out.push("FINAL MULTI-BATCH SUMMARY".to_owned());
    out.push(RULE.to_owned());
    if results.interrupted {
        out.push(format!(
            "⚠️  Interrupted after {} of {} batches: figures cover what ran.",
            results.results.len(),
            results.num_batches
        ));
    }
    overall(&mut out, results, &report);
    per_batch(&mut out, results, &report);
    vram(&mut out, &report);
    consistency(&mut out, &report);
    persistence(&mut out, &report);
    verdicts(&mut out, results, &report);
    out.join("\n")
}

fn overall(out: &mut Vec<String>, results: &RunResults, r: &MultiBatchReport) {
    let t = &r.totals;
    out.push(String::new());
    out.push("📊 Overall Statistics:".into());
    out.push(format!("  Total batches: {}", results.results.len()));
    out.push(format!("  Total requests: {}", thousands(t.requests)));
    out.push(format!("  Total failed: {}", thousands(t.failed)));
    out.push(format!("  Success rate: {}", pct(t.success_pct, 2)));
    out.push(format!("  Total time: {}", span(t.total_seconds)));
    out.push(format!("  Average rate: {}", rps(t.throughput_rps)));
}

fn per_batch(out: &mut Vec<String>, results: &RunResults, r: &MultiBatchReport) {
    out.push(String::new());
    out.push("📊 Per-Batch Performance:".into());
    for b in &results.results {
        let line = r.batches.iter().find(|l| l.batch_id == b.batch_id);
        // The report's VRAM figures are the ones judged; batchctl's own readings stand in.
        let delta = line.and_then(|l| l.vram_delta_gb).or(b.vram_delta_gb);
        let mut text = format!(
            "  Batch {}: {} | {} | VRAM: {}",
            b.batch_num,
            span(b.elapsed_seconds),
            rps(b.rate_per_second),
            signed_gb(delta)
        );
        if b.status != "completed" {
            text.push_str(&format!(" | {}", b.status));
        }
        if b.request_counts.failed > 0 {
            text.push_str(&format!(" | {} failed", thousands(b.request_counts.failed)));
        }
        out.push(text);
    }
}

fn vram(out: &mut Vec<String>, r: &MultiBatchReport) {
    let v = &r.vram;
    out.push(String::new());
    out.push("📊 VRAM Analysis:".into());
    out.push(format!("  Start VRAM: {}", gb(v.start_gb)));
    out.push(format!("  End VRAM: {}", gb(v.end_gb)));
    out.push(format!("  Total delta: {}", signed_gb(v.delta_gb)));
    out.push(format!(
        "  Trend: {}",
        v.trend_gb_per_batch.map_or_else(|| "unknown".into(), |t| format!("{t:+.2} GB per batch"))
    ));
    let peak = r
        .batches
        .iter()
        .filter_map(|b| b.vram_peak_gb.map(|p| (p, b.index)))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((peak, index)) = peak {
        out.push(format!("  Peak VRAM: {peak:.2} GB (batch {index})"));
    }
    if let Some(w) = &v.warning {
        out.push(format!("  ⚠️  {w}"));
    }
    out.push(verdict_line(&v.verdict, "No memory leak detected!"));
}

fn consistency(out: &mut Vec<String>, r: &MultiBatchReport) {
    let t = &r.throughput;
    out.push(String::new());
    out.push("📊 Performance Consistency:".into());
    out.push(format!("  Min rate: {}", rps(t.min_rps)));
    out.push(format!("  Max rate: {}", rps(t.max_rps)));
    out.push(format!("  Mean rate: {}", rps(t.mean_rps)));
    out.push(format!("  Std dev: {}", rps(t.std_dev_rps)));
    out.push(format!("  Variance: {}", pct(t.variance_pct, 1)));
    out.push(verdict_line(&t.verdict, "Consistent performance!"));
}

fn persistence(out: &mut Vec<String>, r: &MultiBatchReport) {
    out.push(String::new());
    out.push("📊 Model Persistence:".into());
    out.push(format!("  Model reloads: {}", r.model_reloads.total));
    out.push(verdict_line(&r.model_reloads.verdict, "Model stayed loaded (no reload delays)!"));
}

fn verdicts(out: &mut Vec<String>, results: &RunResults, r: &MultiBatchReport) {
    let t = &results.thresholds;
    out.push(String::new());
    out.push("📋 Verdicts:".into());
    for c in criteria(results, r) {
        out.push(format!("  {} {}: {}", view::mark(&c.verdict), c.name, c.measured));
    }
    out.push(format!(
        "  (thresholds: VRAM delta < {:.2} GB, variance < {:.1}%, success ≥ {:.2}%)",
        t.max_vram_delta_gb, t.max_variance_pct, t.min_success_pct
    ));
    out.push(String::new());
    out.push(RULE.to_owned());
    if results.pass {
        out.push("✅ PASS: every criterion met".into());
    } else {
        let n = results.failures.len();
        out.push(format!("❌ FAIL: {n} criteri{} not met:", if n == 1 { "on" } else { "a" }));
        for f in &results.failures {
            out.push(format!("  - {f}"));
        }
    }
    out.push(RULE.to_owned());
}

/// One success criterion as the summary and the HTML report show it.
pub struct Criterion {
    pub name: &'static str,
    pub threshold: String,
    pub measured: String,
    pub verdict: Verdict,
}

/// The plan's criteria, judged by the report, and batchctl's own: every batch ran to its end.
pub fn criteria(results: &RunResults, r: &MultiBatchReport) -> Vec<Criterion> {
    let t = &results.thresholds;
    let completed = results.results.iter().filter(|b| b.status == "completed").count();
    let not_run = not_run_reason(results);
    let runs = Verdict {
        status: if not_run.is_none() { Status::Pass } else { Status::Fail },
        reason: not_run,
    };
    let missing = |v: &Verdict| {
        if results.report.is_none() { Verdict::unknown("no report".into()) } else { v.clone() }
    };
    let trend = r.vram.trend_gb_per_batch.map(|s| format!(", trend {s:+.2} GB/batch"));
    vec![
        Criterion {
            name: "No VRAM leak",
            threshold: format!("delta < {:.2} GB", t.max_vram_delta_gb),
            measured: format!("{}{}", signed_gb(r.vram.delta_gb), trend.unwrap_or_default()),
            verdict: missing(&r.vram.verdict),
        },
        Criterion {
            name: "Consistent throughput",
            threshold: format!("variance < {:.1}%", t.max_variance_pct),
            measured: format!(
                "{} ({} to {})",
                pct(r.throughput.variance_pct, 1),
                rps(r.throughput.min_rps),
                rps(r.throughput.max_rps)
            ),
            verdict: missing(&r.throughput.verdict),
        },
        Criterion {
            name: "Success rate",
            threshold: format!("≥ {:.2}% in every batch", t.min_success_pct),
            measured: format!(
                "{} (lowest batch {})",
                pct(r.success.success_pct, 2),
                pct(r.success.min_batch_success_pct, 2)
            ),
            verdict: missing(&r.success.verdict),
        },
        Criterion {
            name: "Model stays loaded",
            threshold: "0 reloads".into(),
            measured: format!("{} reloads", r.model_reloads.total),
            verdict: missing(&r.model_reloads.verdict),
        },
        Criterion {
            name: "All batches completed",
            threshold: format!("{} of {}", results.num_batches, results.num_batches),
            measured: format!("{completed} of {}", results.num_batches),
            verdict: runs,
        },
    ]
}

/// Why not every batch asked for completed, if so.
pub fn not_run_reason(results: &RunResults) -> Option<String> {
    let completed = results.results.iter().filter(|b| b.status == "completed").count();
    if completed as u64 == results.num_batches && !results.interrupted {
        return None;
    }
    let mut reason = format!("{completed} of {} batches completed", results.num_batches);
    if results.interrupted {
        reason.push_str(" (interrupted)");
    }
    let ended: Vec<String> = results
        .results
        .iter()
        .filter(|b| b.status != "completed")
        .map(|b| format!("batch {} ({}) ended {}", b.batch_num, b.batch_id, b.status))
        .collect();
    if !ended.is_empty() {
        reason.push_str(&format!(": {}", ended.join("; ")));
    }
    Some(reason)
}

fn verdict_line(v: &Verdict, good: &str) -> String {
    match (v.passed(), &v.reason) {
        (true, _) => format!("  ✅ {good}"),
        (false, Some(reason)) => format!("  {} {reason}", view::mark(v)),
        (false, None) => format!("  {} not judged", view::mark(v)),
    }
}

/// `12.3 s` below a minute, `40.0 min` up to three hours, `5.2 h` beyond.
pub fn span(secs: Option<f64>) -> String {
    match secs {
        None => "unknown".into(),
        Some(s) if s >= 3.0 * 3600.0 => format!("{:.1} h", s / 3600.0),
        Some(s) if s >= 60.0 => format!("{:.1} min", s / 60.0),
        Some(s) => format!("{s:.1} s"),
    }
}

/// `0.20 req/s`, with a third decimal for very slow batches.
pub fn rps(v: Option<f64>) -> String {
    match v {
        None => "unknown".into(),
        Some(v) if v != 0.0 && v.abs() < 0.1 => format!("{v:.3} req/s"),
        Some(v) => format!("{v:.2} req/s"),
    }
}

pub fn gb(v: Option<f64>) -> String {
    v.map_or_else(|| "unknown".into(), |v| format!("{v:.2} GB"))
}

pub fn signed_gb(v: Option<f64>) -> String {
    v.map_or_else(|| "unknown".into(), |v| format!("{v:+.2} GB"))
}

pub fn pct(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "unknown".into(), |v| format!("{v:.decimals$}%"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_as_the_test_plan_writes_them() {
        assert_eq!(span(Some(2400.0)), "40.0 min");
        assert_eq!(span(Some(12.34)), "12.3 s");
        assert_eq!(span(Some(7200.0)), "120.0 min");
        assert_eq!(span(Some(84_060.0)), "23.4 h");
        assert_eq!(rps(Some(0.2)), "0.20 req/s");
        assert_eq!(rps(Some(0.0123)), "0.012 req/s");
        assert_eq!(signed_gb(Some(0.0)), "+0.00 GB");
        assert_eq!(signed_gb(None), "unknown");
        assert_eq!(pct(Some(5.0), 1), "5.0%");
    }
}
