//! `batchctl multi-batch` against the whole product: gateway, two workers, the simulator and the
//! metrics service, in this test's runtime; the binary runs as a user would run it.

use crate::helpers::{batchctl_command, batchctl_within, valid_batch_file};
use batchctl::Client;
use nightshift_testkit::stack::{Mode, Stack};
use ollama_sim::SimConfig;
use serde_json::Value;
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const REQUESTS: u64 = 200;

/// The stack with the model warm on both workers (so VRAM is known before the first batch).
async fn warm_stack(pool: PgPool, sim: SimConfig) -> (Stack, String) {
    let mut stack = Stack::start(Mode::Distributed(pool), sim, &[]).await;
    let metrics = stack.start_metrics().await;
    for _ in 0..2 {
        stack.spawn_worker(&["--concurrency", "4", "--models", "llama3.2:1b"]);
    }
    let client = Client::metrics(&metrics, None).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let gpus = client.gpus().await.unwrap();
        if gpus.iter().map(|g| g.memory_used_bytes).sum::<i64>() > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no VRAM reading reached the metrics service");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (stack, metrics)
}

fn sim(leak_mb_per_request: f64) -> SimConfig {
    SimConfig {
        latency_ms: Some(2),
        parallel: 8,
        load_ms: 20,
        vram_leak_mb_per_request: leak_mb_per_request,
        ..SimConfig::default()
    }
}

/// `multi-batch --batches 3` over `input` into `out`, with test-speed polling.
async fn multi_batch(
    stack: &Stack,
    metrics: &str,
    input: &Path,
    out: &Path,
    extra: &[&str],
) -> crate::helpers::Run {
    let gateway = stack.gateway_url();
    let env = [("NIGHTSHIFT_URL", gateway.as_str()), ("NIGHTSHIFT_METRICS_URL", metrics)];
    let mut args = vec![
        "multi-batch",
        "--batches",
        "3",
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--pause",
        "0s",
        "--poll",
        "100ms",
        "--vram-every",
        "200ms",
    ];
    args.extend_from_slice(extra);
    batchctl_within(Duration::from_secs(120), &env, &args).await
}

/// The one file in `dir` named `prefix*suffix`.
fn only_file(dir: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with(prefix) && name.ends_with(suffix)
        })
        .collect();
    assert_eq!(found.len(), 1, "{prefix}*{suffix} in {}: {found:?}", dir.display());
    found.into_iter().next().unwrap()
}

fn stamp_of<'a>(path: &'a Path, prefix: &str, suffix: &str) -> &'a str {
    let name = path.file_name().unwrap().to_str().unwrap();
    name.strip_prefix(prefix).unwrap().strip_suffix(suffix).unwrap()
}

async fn metrics_report(metrics: &str, ids: &[&str], extra: &[(&str, &str)]) -> Value {
    let mut query: Vec<(&str, &str)> = ids.iter().map(|id| ("batch_id", *id)).collect();
    query.extend_from_slice(extra);
    reqwest::Client::new()
        .get(format!("{metrics}/v1/reports/multi-batch"))
        .query(&query)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn close(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * b.abs().max(1.0),
        _ => false,
    }
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn three_stable_batches_pass_and_the_results_match_the_metrics_service(pool: PgPool) {
    let (stack, metrics) = warm_stack(pool, sim(0.0)).await;
    let dir = tempfile::tempdir().unwrap();
    let input = valid_batch_file(dir.path(), REQUESTS);
    let out = dir.path().join("out");

    // Batches of 200 simulated requests take a second or so: their rates are noise, so this
    // run does not judge consistency (variance is always below 100% while batches progress).
    let run = multi_batch(&stack, &metrics, &input, &out, &["--max-variance-pct", "100"]).await;

    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for section in [
        "FINAL MULTI-BATCH SUMMARY",
        "📊 Overall Statistics:",
        "  Total batches: 3",
        "  Total requests: 600",
        "  Total failed: 0",
        "  Success rate: 100.00%",
        "📊 Per-Batch Performance:",
        "  Batch 1: ",
        "  Batch 3: ",
        "📊 VRAM Analysis:",
        "  Start VRAM: ",
        "  Total delta: +0.00 GB",
        "✅ No memory leak detected!",
        "📊 Performance Consistency:",
        "  Variance: ",
        "📊 Model Persistence:",
        "  Model reloads: 0",
        "✅ PASS",
    ] {
        assert!(run.stdout.contains(section), "no {section:?} in:\n{}", run.stdout);
    }

    let json_path = only_file(&out, "multi_batch_results_", ".json");
    let stamp = stamp_of(&json_path, "multi_batch_results_", ".json");
    assert_eq!(stamp.len(), "20251027_140309".len(), "{stamp}");
    let results: Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(results["num_batches"], 3);
    assert_eq!(results["interrupted"], false);
    assert_eq!(results["pass"], true);
    assert_eq!(results["failures"], serde_json::json!([]));
    assert!(results["timestamp"].as_str().unwrap().ends_with('Z'));
    let batches = results["results"].as_array().unwrap();
    let ids: Vec<&str> = batches.iter().map(|b| b["batch_id"].as_str().unwrap()).collect();
    assert_eq!(batches.len(), 3);

    let report = metrics_report(&metrics, &ids, &[("max_variance_pct", "100")]).await;
    assert_eq!(results["report"]["object"], "report.multi_batch");
    assert_eq!(results["report"]["pass"], true);
    assert_eq!(report["pass"], true, "{report:#}");
    let gateway = Client::new(&stack.gateway_url(), None).unwrap();
    for (i, b) in batches.iter().enumerate() {
        assert_eq!(b["batch_num"], i as u64 + 1);
        assert_eq!(b["status"], "completed");
        assert_eq!(
            b["request_counts"],
            serde_json::json!({"total": 200, "completed": 200, "failed": 0})
        );
        let line = &report["batches"][i];
        assert_eq!(line["batch_id"], b["batch_id"]);
        assert!(close(&b["rate_per_second"], &line["throughput_rps"]), "{b:#}\n{line:#}");
        assert!(close(&b["elapsed_seconds"], &line["processing_seconds"]), "{b:#}\n{line:#}");
        assert!(b["vram_before_gb"].as_f64().unwrap() > 0.0, "the model was warm: {b:#}");
        assert!(b["vram_delta_gb"].as_f64().unwrap().abs() < 0.01, "{b:#}");
        let m = &b["metrics"];
        assert_eq!(m["object"], "batch.metrics");
        assert_eq!(m["batch_id"], b["batch_id"]);
        assert_eq!(
            (&m["requests"]["completed"], &m["requests"]["failed"]),
            (&200.into(), &0.into())
        );
        assert!(m["timing"]["latency_p95_ms"].is_number(), "{m:#}");
        assert!(m["vram"]["peak_bytes"].is_number(), "{m:#}");
        let created = gateway.get_batch(ids[i]).await.unwrap();
        let metadata = created.metadata.unwrap();
        assert_eq!(metadata["test_batch_num"], (i + 1).to_string());
        assert_eq!(metadata["test_type"], "multi_batch");
    }
    let timeline = results["vram_timeline"].as_array().unwrap();
    assert!(timeline.len() >= 2, "{timeline:?}");
    assert!(timeline.windows(2).all(|w| w[0]["t"].as_i64() < w[1]["t"].as_i64()));

    let html =
        std::fs::read_to_string(out.join(format!("multi_batch_report_{stamp}.html"))).unwrap();
    assert!(html.contains("<svg"), "no chart");
    assert!(html.contains("PASS"));
    for id in &ids {
        assert!(html.contains(id), "{id} missing from the HTML report");
    }
    stack.shutdown().await;
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn a_vram_leak_across_batches_fails_the_run_with_exit_1(pool: PgPool) {
    // 3 × 200 requests × 2 MiB leaked ≈ 1.17 GB, over the plan's 0.5 GB.
    let (stack, metrics) = warm_stack(pool, sim(2.0)).await;
    let dir = tempfile::tempdir().unwrap();
    let input = valid_batch_file(dir.path(), REQUESTS);

    let run =
        multi_batch(&stack, &metrics, &input, dir.path(), &["--max-variance-pct", "100"]).await;

    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("❌ FAIL"), "{}", run.stdout);
    assert!(run.stdout.contains("❌ No VRAM leak: +1."), "{}", run.stdout);
    assert!(run.stdout.contains("possible memory leak"), "{}", run.stdout);
    let results: Value = serde_json::from_slice(
        &std::fs::read(only_file(dir.path(), "multi_batch_results_", ".json")).unwrap(),
    )
    .unwrap();
    assert_eq!(results["pass"], false);
    assert_eq!(results["report"]["vram"]["verdict"]["status"], "fail");
    let failures = results["failures"].as_array().unwrap();
    assert!(
        failures.iter().any(|f| f.as_str().unwrap().contains("VRAM grew by +1.")),
        "{failures:?}"
    );
    let first = results["results"][0]["vram_before_gb"].as_f64().unwrap();
    let last = results["results"][2]["vram_after_gb"].as_f64().unwrap();
    assert!(last - first > 1.0, "{first} → {last}");
    only_file(dir.path(), "multi_batch_report_", ".html");
    stack.shutdown().await;
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn ctrl_c_cancels_the_running_batch_writes_what_was_measured_and_exits_2(pool: PgPool) {
    let slow = SimConfig { latency_ms: Some(20), ..sim(0.0) };
    let (stack, metrics) = warm_stack(pool, slow).await;
    let dir = tempfile::tempdir().unwrap();
    let input = valid_batch_file(dir.path(), 2000);
    let gateway_url = stack.gateway_url();
    let env =
        [("NIGHTSHIFT_URL", gateway_url.as_str()), ("NIGHTSHIFT_METRICS_URL", metrics.as_str())];
    let args = [
        "multi-batch",
        "--batches",
        "3",
        "--input",
        input.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
        "--poll",
        "100ms",
        "--cancel-on-interrupt",
    ];
    let child = batchctl_command(&env, &args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let output = tokio::spawn(child.wait_with_output());

    // Interrupt once the first batch is under way.
    let gateway = Client::new(&gateway_url, None).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let id = loop {
        let page = gateway.list_batches(None, None).await.unwrap();
        if let Some(b) = page.data.first().filter(|b| b.request_counts.completed >= 100) {
            break b.id.clone();
        }
        assert!(Instant::now() < deadline, "the first batch never got going");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let killed = std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status();
    assert!(killed.unwrap().success());
    let output =
        tokio::time::timeout(Duration::from_secs(60), output).await.unwrap().unwrap().unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Value = serde_json::from_slice(
        &std::fs::read(only_file(dir.path(), "multi_batch_results_", ".json")).unwrap(),
    )
    .unwrap();
    assert_eq!(results["interrupted"], true);
    assert_eq!(results["pass"], false);
    assert_eq!(results["results"].as_array().unwrap().len(), 1);
    assert_eq!(results["results"][0]["batch_id"], id.as_str());
    assert_eq!(results["results"][0]["status"], "cancelled");
    assert!(stdout.contains("Interrupted after 1 of 3 batches"), "{stdout}");
    let batch = gateway.get_batch(&id).await.unwrap();
    assert_eq!(batch.status.as_str(), "cancelled");
    assert_eq!(gateway.list_batches(None, None).await.unwrap().data.len(), 1, "no second batch");
    only_file(dir.path(), "multi_batch_report_", ".html");
    stack.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_metrics_service_stops_the_run_before_any_batch_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let input = valid_batch_file(dir.path(), 3);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let metrics = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let env =
        [("NIGHTSHIFT_URL", "http://127.0.0.1:9"), ("NIGHTSHIFT_METRICS_URL", metrics.as_str())];
    let args = ["multi-batch", "--batches", "3", "--input", input.to_str().unwrap(), "--out"];

    let run = batchctl_within(
        Duration::from_secs(30),
        &env,
        &[&args[..], &[dir.path().to_str().unwrap()]].concat(),
    )
    .await;

    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.starts_with("error: checking the metrics service"), "{run:?}");
    assert!(run.stderr.contains("cannot reach the metrics service"), "{run:?}");
    assert!(run.stderr.contains("--metrics-url"), "says how to point at it: {run:?}");
    let written = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(written, 1, "only the input file: nothing ran, nothing written");
}
