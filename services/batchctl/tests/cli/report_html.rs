//! The HTML report in a real browser: headless Chromium must draw every chart. Chromium is
//! required (Debian: `apt-get install -y chromium`); without it these tests fail, never skip.

use batchctl::multibatch::results::{self, RunResults};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const GB: f64 = 1_073_741_824.0;

/// The browser: `$CHROMIUM`, else the first of the usual names on the PATH.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(path);
    }
    for name in ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"] {
        let found = Command::new("sh").args(["-c", &format!("command -v {name}")]).output();
        if let Ok(out) = found
            && out.status.success()
        {
            return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        }
    }
    panic!(
        "headless Chromium is needed to check the HTML report: install it (Debian/Ubuntu: \
         `apt-get install -y chromium`) or set CHROMIUM to the browser's path"
    );
}

/// Runs headless Chromium on `page` with `args`, returning its stdout.
fn headless(page: &Path, args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut command = Command::new(chromium());
    command
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()));
    // To files, not pipes: a DOM dump outgrows a pipe's buffer while nobody reads it.
    let stdout = profile.path().join("stdout");
    let stderr = profile.path().join("stderr");
    let mut child = command
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium ran for over 90 s on {}", page.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let errors = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert!(status.success(), "chromium failed: {errors}");
    std::fs::read_to_string(&stdout).unwrap()
}

/// The test plan's "warning signs" run: VRAM creeping by 0.15 GB per batch (under the limit, with
/// a warning) and throughput degrading by 20% (over it).
fn degrading_run() -> RunResults {
    let ids = ["batch_85c5d5f0067d4ca3bd8e4ff6d1b5b0a7", "batch_2", "batch_3"];
    let rates = [0.20, 0.18, 0.16];
    let start = 1_761_573_789_000_i64;
    let mut t = start;
    let mut batches = Vec::new();
    let mut lines = Vec::new();
    let mut timeline = Vec::new();
    for (i, (id, rate)) in ids.iter().zip(rates).enumerate() {
        let secs = 5000.0 / rate;
        let (before, after) = (10.35 + 0.15 * i as f64, 10.50 + 0.15 * i as f64);
        let (begin, end) = (t, t + (secs * 1000.0) as i64);
        let mut s = begin - 10_000;
        while s <= end + 5_000 {
            let progress = ((s - begin) as f64 / (end - begin) as f64).clamp(0.0, 1.0);
            let used = before + (after - before) * progress + 0.08 * (progress * 40.0).sin().abs();
            timeline.push(json!({"t": s, "used_bytes": (used * GB) as i64}));
            s += 30_000;
        }
        let metrics = json!({
            "object": "batch.metrics", "batch_id": id, "status": "completed",
            "requests": {"total": 5000, "completed": 5000, "failed": 0, "success_pct": 100.0},
            "timing": {"started_at": begin, "ended_at": end, "processing_seconds": secs,
                       "throughput_rps": rate, "latency_p50_ms": 4800.0 + 300.0 * i as f64,
                       "latency_p95_ms": 7100.0 + 500.0 * i as f64, "latency_p99_ms": 9400.0 + 800.0 * i as f64},
            "tokens": {"prompt": 1_250_000, "completion": 640_000, "cached": null,
                       "tokens_per_second": 640_000.0 / secs, "cache_hit_rate": null},
            "vram": {"source": "nvml", "before_bytes": (before * GB) as i64,
                     "after_bytes": (after * GB) as i64, "peak_bytes": ((after + 0.08) * GB) as i64},
            "error_types": [], "model_reloads": {"count": 0, "reloads": []}
        });
        batches.push(json!({
            "batch_id": id, "batch_num": i + 1, "status": "completed",
            "request_counts": {"total": 5000, "completed": 5000, "failed": 0},
            "elapsed_seconds": secs, "rate_per_second": rate,
            "vram_before_gb": before, "vram_after_gb": after, "vram_delta_gb": after - before,
            "started_at_ms": begin, "ended_at_ms": end, "metrics": metrics
        }));
        lines.push(json!({
            "index": i + 1, "batch_id": id, "status": "completed", "requests": 5000,
            "completed": 5000, "failed": 0, "processing_seconds": secs, "throughput_rps": rate,
            "vram_before_gb": before, "vram_after_gb": after, "vram_delta_gb": 0.15,
            "vram_peak_gb": after + 0.08, "model_reloads": 0
        }));
        t = end + 10_000;
    }
    let reason =
        "throughput varies by 20.0% between batches (0.160 to 0.200 req/s; threshold 10.0%)";
    let report = json!({
        "object": "report.multi_batch",
        "thresholds": {"max_vram_delta_gb": 0.5, "max_variance_pct": 10.0, "min_success_pct": 100.0},
        "totals": {"batches": 3, "requests": 15000, "completed": 15000, "failed": 0,
                   "success_pct": 100.0, "total_seconds": (t - start) as f64 / 1000.0,
                   "throughput_rps": 0.18, "error_types": []},
        "batches": lines,
        "vram": {"start_gb": 10.35, "end_gb": 10.80, "delta_gb": 0.45, "trend_gb_per_batch": 0.15,
                 "warning": "VRAM grew in every batch (+0.45 GB in total, +0.15 GB per batch): possible leak building up",
                 "verdict": {"status": "pass", "reason": null}},
        "throughput": {"min_rps": 0.16, "max_rps": 0.20, "mean_rps": 0.18, "std_dev_rps": 0.02,
                       "variance_pct": 20.0, "verdict": {"status": "fail", "reason": reason}},
        "model_reloads": {"total": 0, "verdict": {"status": "pass", "reason": null}},
        "success": {"success_pct": 100.0, "min_batch_success_pct": 100.0,
                    "verdict": {"status": "pass", "reason": null}},
        "pass": false,
        "failures": [reason]
    });
    serde_json::from_value(json!({
        "timestamp": "2025-10-27T14:03:09Z", "num_batches": 3, "input_file": "batch_5k.jsonl",
        "endpoint": "/v1/chat/completions", "gateway_url": "http://localhost:4080",
        "metrics_url": "http://localhost:4081",
        "thresholds": {"max_vram_delta_gb": 0.5, "max_variance_pct": 10.0, "min_success_pct": 100.0},
        "interrupted": false, "results": batches, "vram_timeline": timeline, "report": report,
        "pass": false, "failures": [reason]
    }))
    .unwrap()
}

/// The value of `attr="..."` on the element that starts at `tag`.
fn attr<'a>(tag: &'a str, attr: &str) -> Option<&'a str> {
    let end = tag.find('>')?;
    let open = &tag[..end];
    let start = open.find(&format!("{attr}=\""))? + attr.len() + 2;
    open[start..].split('"').next()
}

#[test]
fn chromium_renders_every_chart_of_the_html_report() {
    let dir = tempfile::tempdir().unwrap();
    let paths = results::paths(dir.path(), "20251027_140309");
    results::write(&degrading_run(), &paths).unwrap();

    let dom = headless(&paths.html, &["--dump-dom"]);
    let shot = dir.path().join("report.png");
    headless(
        &paths.html,
        &[&format!("--screenshot={}", shot.display()), "--window-size=1280,2800"],
    );

    // The inline script ran after layout and measured each chart.
    let charts: Vec<&str> =
        dom.match_indices("<svg class=\"chart").map(|(i, _)| &dom[i..]).collect();
    let classes: Vec<&str> = charts.iter().filter_map(|c| attr(c, "class")).collect();
    assert_eq!(classes, ["chart vram", "chart throughput", "chart latency", "chart tokens"]);
    for chart in &charts {
        let width: f64 =
            attr(chart, "data-rendered-width").expect("chart not measured").parse().unwrap();
        let height: f64 = attr(chart, "data-rendered-height").unwrap().parse().unwrap();
        assert!(width > 100.0 && height > 100.0, "{width}×{height}: {}", &chart[..200]);
    }
    assert!(dom.contains("data-charts-rendered=\"4\""), "the inline script did not run");
    // Drawn data, not just axes: the VRAM line through every sample, one bar per value.
    let line = dom.split("<path class=\"line\" d=\"").nth(1).unwrap();
    let d = line.split('"').next().unwrap();
    assert!(d.starts_with('M') && d.matches('L').count() > 500, "VRAM path: {}", &d[..80]);
    assert_eq!(dom.matches("<rect class=\"bar\"").count(), 3 + 9 + 6);
    assert_eq!(dom.matches("<rect class=\"span\"").count(), 3, "one shaded span per batch");
    assert!(dom.contains("leak limit: start + 0.50 GB"));
    assert!(dom.contains("FAIL: 1 criterion not met"));
    assert!(dom.contains("batch_85c5d5f0067d4ca3bd8e4ff6d1b5b0a7"));

    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(png.len() > 100_000, "a {} byte screenshot is too plain to be the report", png.len());
}

#[test]
fn the_html_report_is_self_contained() {
    let dir = tempfile::tempdir().unwrap();
    let paths = results::paths(dir.path(), "20251027_140309");
    results::write(&degrading_run(), &paths).unwrap();
    let html = std::fs::read_to_string(&paths.html).unwrap();

    for remote in ["http://", "https://", "//cdn", "<link", "<script src", "<img"] {
        let outside_text =
            html.replace("http://localhost:4080", "").replace("http://localhost:4081", "");
        let outside_text = outside_text.replace("http://www.w3.org/2000/svg", "");
        assert!(!outside_text.contains(remote), "the report loads something remote: {remote}");
    }
    let json: Value = serde_json::from_slice(&std::fs::read(&paths.json).unwrap()).unwrap();
    assert_eq!(json["results"][0]["rate_per_second"], 0.2);
    assert!(html.contains("multi_batch_results_20251027_140309.json"));
}
