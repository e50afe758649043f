//! `GET /v1/reports/multi-batch`: verdicts both ways on three back-to-back batches.

use crate::helpers::*;
use serde_json::Value;
use sqlx::PgPool;

/// Three clean batches of 100 requests, 1,000 s apart, at the given rates.
fn three(rates: [f64; 3]) -> Vec<Plan> {
    (0..3).map(|i| Plan::new(&format!("b{}", i + 1), i as i64 * 1000, 100, rates[i])).collect()
}

async fn report(app: &TestApp, plans: &[Plan], extra: &str) -> Value {
    for plan in plans {
        app.run(plan).await;
    }
    app.settle().await;
    let ids: Vec<String> = plans.iter().map(|p| format!("batch_id={}", p.id)).collect();
    app.get_json(&format!("/v1/reports/multi-batch?{}{extra}", ids.join("&"))).await
}

fn approx(value: &Value, want: f64, tolerance: f64) {
    let got = value.as_f64().unwrap_or_else(|| panic!("{value} is not a number"));
    assert!((got - want).abs() < tolerance, "got {got}, want {want}");
}

#[sqlx::test(migrator = "nightshift_metrics::store::MIGRATOR")]
async fn clean_batches_pass_every_criterion(pool: PgPool) {
    let app = spawn_app(pool).await;

    let r = report(&app, &three([0.20, 0.19, 0.20]), "").await;

    assert_eq!(r["pass"], true, "{:#}", r["failures"]);
    assert_eq!(r["failures"], serde_json::json!([]));
    let totals = &r["totals"];
    assert_eq!((totals["batches"].as_u64(), totals["requests"].as_u64()), (Some(3), Some(300)));
    assert_eq!((totals["completed"].as_u64(), totals["failed"].as_u64()), (Some(300), Some(0)));
    assert_close(&totals["success_pct"], 100.0);
    approx(&totals["processing_seconds"], 500.0 + 100.0 / 0.19 + 500.0, 0.01);
    approx(&totals["total_seconds"], 2000.0 + 500.0, 0.01);
    approx(&r["throughput"]["variance_pct"], 5.0, 0.01);
    approx(&r["throughput"]["min_rps"], 0.19, 1e-4);
    approx(&r["throughput"]["max_rps"], 0.20, 1e-4);
    assert_eq!(r["throughput"]["verdict"]["status"], "pass");
    let vram = &r["vram"];
    assert_eq!((vram["unit"].as_str(), vram["source"].as_str()), (Some("GiB"), Some("nvml")));
    approx(&vram["start_gb"], 10.35, 1e-6);
    approx(&vram["end_gb"], 10.35, 1e-6);
    approx(&vram["delta_gb"], 0.0, 1e-6);
    approx(&vram["trend_gb_per_batch"], 0.0, 1e-9);
    assert!(vram["warning"].is_null());
    assert_eq!(r["model_reloads"]["total"], 0);
    assert_eq!(r["success"]["verdict"]["status"], "pass");
    let rows: Vec<&str> =
        r["batches"].as_array().unwrap().iter().map(|b| b["batch_id"].as_str().unwrap()).collect();
    assert_eq!(rows, ["b1", "b2", "b3"]);
    approx(&r["batches"][1]["vram_delta_gb"], 0.0, 1e-6);
}

#[sqlx::test(migrator = "nightshift_metrics::store::MIGRATOR")]
async fn batches_come_back_in_the_order_asked(pool: PgPool) {
    let app = spawn_app(pool).await;
    let plans = three([0.2, 0.2, 0.2]);
    let reordered = [plans[2].clone(), plans[0].clone(), plans[1].clone()];

    let r = report(&app, &reordered, "").await;

    let rows: Vec<(u64, &str)> = r["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["index"].as_u64().unwrap(), b["batch_id"].as_str().unwrap()))
        .collect();
    assert_eq!(rows, [(1, "b3"), (2, "b1"), (3, "b2")]);
}

#[sqlx::test(migrator = "nightshift_metrics::store::MIGRATOR")]
async fn growing_vram_fails_the_leak_check_with_the_measured_delta(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mut plans = three([0.2, 0.2, 0.2]);
    for (i, plan) in plans.iter_mut().enumerate() {
        plan.vram_before = 10.35 + 0.3 * i as f64;
        plan.vram_after = plan.vram_before + 0.3;
        plan.vram_peak = plan.vram_after + 0.5;
    }

    let r = report(&app, &plans, "").await;

    assert_eq!(r["pass"], false);
    approx(&r["vram"]["delta_gb"], 0.90, 1e-6);
    approx(&r["vram"]["trend_gb_per_batch"], 0.30, 1e-6);
    assert_eq!(r["vram"]["verdict"]["status"], "fail");
    assert!(r["vram"]["warning"].as_str().unwrap().contains("every batch"));
    let failures = r["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].as_str().unwrap().contains("+0.90 GB"), "{failures:?}");

    // A looser threshold passes the same run, still with the warning.
    let ids = "batch_id=b1&batch_id=b2&batch_id=b3&max_vram_delta_gb=1";
    let loose = app.get_json(&format!("/v1/reports/multi-batch?{ids}")).await;
    assert_eq!(loose["pass"], true, "{}", loose["failures"]);
    assert!(loose["vram"]["warning"].is_string());
}

#[sqlx::test(migrator = "nightshift_metrics::store::MIGRATOR")]
async fn model_reloads_fail_with_their_count(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mut plans = three([0.2, 0.2, 0.2]);
    plans[1].reloads = 1;
    plans[2].reloads = 1;

    let r = report(&app, &plans, "").await;

    assert_eq!(r["pass"], false);
    assert_eq!(r["model_reloads"]["total"], 2);
    assert_eq!(r["batches"][1]["model_reloads"], 1);
    assert_eq!(r["model_reloads"]["verdict"]["status"], "fail");
    let reason = r["model_reloads"]["verdict"]["reason"].as_str().unwrap();
    assert!(reason.contains("reloaded 2 times"), "{reason}");
}

#[sqlx::test(migrator = "nightshift_metrics::store::MIGRATOR")]
async fn failed_requests_lower_the_success_rate_and_list_their_errors(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mut plans = three([0.2, 0.2, 0.2]);
    plans[1].failed = vec![(1, "backend_timeout"), (2, "backend_timeout"), (3, "http_500")];

    let r = report(&app, &plans, "").await;

    assert_eq!(r["pass"], false);
    assert_eq!(r["totals"]["failed"], 3);
    assert_close(&r["totals"]["success_pct"], 297.0 / 3.0);
    approx(&r["success"]["min_batch_success_pct"], 97.0, 1e-9);
    assert_eq!(
        r["totals"]["error_types"],
        serde_json::json!([{"code": "backend_timeout", "count": 2}, {"code": "http_500", "count": 1}])
    );
    let reason = r["success"]["verdict"]["reason"].as_str().unwrap();
    assert!(reason.contains("b2 97.00%") && reason.contains("backend_timeout ×2"), "{reason}");

    let lenient = app
        .get_json("/v1/reports/multi-batch?batch_id=b1&batch_id=b2&batch_id=b3&min_success_pct=95")
        .await;
    assert_eq!(lenient["success"]["verdict"]["status"], "pass");
}

#[sqlx::test(migrator = "nightshift_metrics::store::MIGRATOR")]
async fn a_slow_batch_fails_the_variance_check(pool: PgPool) {
    let app = spawn_app(pool).await;

    let r = report(&app, &three([0.20, 0.20, 0.15]), "").await;

    assert_eq!(r["pass"], false);
    approx(&r["throughput"]["variance_pct"], 25.0, 0.01);
    assert_eq!(r["throughput"]["verdict"]["status"], "fail");
    assert!(r["failures"][0].as_str().unwrap().contains("25.0%"), "{}", r["failures"]);
    assert!(r["throughput"]["std_dev_rps"].is_number());
}

#[sqlx::test(migrator = "nightshift_metrics::store::MIGRATOR")]
async fn unknown_batch_or_bad_threshold_is_refused(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.run(&Plan::new("b1", 0, 10, 0.2)).await;
    app.settle().await;

    let missing =
        app.get("/v1/reports/multi-batch?batch_id=b1&batch_id=batch_gone").send().await.unwrap();
    let message = assert_error(missing, 404, Some("not_found")).await;
    assert!(message.contains("batch_gone"), "{message}");

    let bad =
        app.get("/v1/reports/multi-batch?batch_id=b1&max_variance_pct=lots").send().await.unwrap();
    assert_error(bad, 400, Some("invalid_value")).await;
    let none = app.get("/v1/reports/multi-batch").send().await.unwrap();
    assert_error(none, 400, Some("missing_required_parameter")).await;
}
