//! `GET /v1/batches/{id}/metrics` from the telemetry of one batch.

use crate::helpers::*;
use nightshift_metrics::store::now_ms;
use nightshift_shared::measurements::SampleTrigger;
use nightshift_shared::on_db;
use nightshift_shared::openai::BatchStatus;
use nightshift_shared::subjects;
use sqlx::PgPool;

#[sqlx::test(migrator = "nightshift_metrics::store::MIGRATOR")]
async fn batch_metrics_report_latency_tokens_vram_errors_and_reloads(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mut plan = Plan::new("batch_a", 0, 10, 0.2);
    plan.failed = vec![(3, "backend_timeout"), (7, "http_400")];
    plan.vram_after = 10.40;
    plan.reloads = 1;

    app.run(&plan).await;
    app.settle().await;
    let m = app.batch_metrics("batch_a").await;

    assert_eq!(m["object"], "batch.metrics");
    assert_eq!(m["batch_id"], "batch_a");
    assert_eq!(m["status"], "completed");
    assert_eq!(m["model"], "llama3.2:1b");
    let r = &m["requests"];
    assert_eq!((r["total"].as_u64(), r["completed"].as_u64()), (Some(10), Some(8)));
    assert_eq!((r["failed"].as_u64(), r["reported"].as_u64()), (Some(2), Some(10)));
    assert_close(&r["success_pct"], 80.0);

    let t = &m["timing"];
    assert_eq!(t["started_at"].as_i64(), Some(plan.start));
    assert_eq!(t["ended_at"].as_i64(), Some(plan.end()));
    assert_close(&t["processing_seconds"], 50.0);
    assert_close(&t["throughput_rps"], 0.2);
    assert_close(&t["seconds_per_request"], 5.0);
    // Latencies 100, 200, ..., 1000 ms, interpolated like Postgres' percentile_cont.
    assert_close(&t["latency_mean_ms"], 550.0);
    assert_close(&t["latency_p50_ms"], 550.0);
    assert_close(&t["latency_p95_ms"], 955.0);
    assert_close(&t["latency_p99_ms"], 991.0);
    assert_close(&t["latency_max_ms"], 1000.0);
    assert_close(&t["queue_wait_mean_ms"], 5.0);

    let k = &m["tokens"];
    assert_eq!((k["prompt"].as_u64(), k["completion"].as_u64()), (Some(100), Some(200)));
    assert_eq!(k["total"].as_u64(), Some(300));
    assert!(k["cached"].is_null(), "{k}");
    assert!(k["cache_hit_rate"].is_null(), "unknown cached tokens must not read as 0: {k}");
    assert_close(&k["tokens_per_second"], 4.0);

    let v = &m["vram"];
    assert_eq!(v["source"], "nvml");
    let gpu = &v["gpus"][0];
    assert_eq!((gpu["host"].as_str(), gpu["gpu"].as_str()), (Some("h1"), Some("GPU-1")));
    assert_eq!(gpu["before_bytes"].as_u64(), Some(bytes(10.35)));
    assert_eq!(gpu["before_at"].as_i64(), Some(plan.start - 10_000));
    assert_eq!(gpu["after_bytes"].as_u64(), Some(bytes(10.40)));
    assert_eq!(gpu["after_at"].as_i64(), Some(plan.end() + 5_000));
    assert_eq!(gpu["peak_bytes"].as_u64(), Some(bytes(10.9)));
    assert_eq!(gpu["delta_bytes"].as_i64(), Some((bytes(10.40) - bytes(10.35)) as i64));
    assert_eq!(gpu["total_bytes"].as_u64(), Some(85_520_809_984));
    assert_eq!(v["delta_bytes"], gpu["delta_bytes"]);

    assert_eq!(
        m["error_types"],
        serde_json::json!([{"code": "backend_timeout", "count": 1}, {"code": "http_400", "count": 1}])
    );
    assert_eq!(m["model_reloads"]["count"], 1);
    assert_eq!(m["model_reloads"]["reloads"][0]["load_ms"], 30_000.0);
    assert_eq!(m["model_reloads"]["reloads"][0]["worker_id"], "w1");
}

#[sqlx::test(migrator = "nightshift_metrics::store::MIGRATOR")]
async fn cache_hit_rate_counts_only_requests_whose_cached_tokens_are_known(pool: PgPool) {
    let app = spawn_app(pool).await;
    let start = base_time();
    app.event("b", "", BatchStatus::InProgress, start, [3, 0, 0]).await;
    let requests = vec![
        request(0, 10.0, None, Some(usage(100, 5, Some(25)))),
        request(1, 10.0, None, Some(usage(100, 5, Some(75)))),
        request(2, 10.0, None, Some(usage(1000, 5, None))),
    ];
    app.publish(subjects::TELEMETRY_CHUNKS, &chunk("b", 0, 1, start + 1000, requests)).await;
    app.settle().await;

    let k = &app.batch_metrics("b").await["tokens"];

    assert_eq!((k["prompt"].as_u64(), k["cached"].as_u64()), (Some(1200), Some(100)));
    assert_close(&k["cache_hit_rate"], 0.5);
}

#[sqlx::test(migrator = "nightshift_metrics::store::MIGRATOR")]
async fn redelivered_chunk_report_is_not_double_counted_and_the_rerun_wins(pool: PgPool) {
    let app = spawn_app(pool).await;
    let start = base_time();
    app.event("b", "", BatchStatus::InProgress, start, [5, 0, 0]).await;
    let first: Vec<_> = (0..5)
        .map(|line| {
            let error = (line == 2).then(|| "backend_timeout".to_owned());
            request(line, 100.0, error, Some(usage(10, 20, None)))
        })
        .collect();
    let rerun: Vec<_> =
        (0..5).map(|line| request(line, 200.0, None, Some(usage(10, 20, None)))).collect();

    app.publish(subjects::TELEMETRY_CHUNKS, &chunk("b", 0, 1, start + 1000, first)).await;
    app.publish(subjects::TELEMETRY_CHUNKS, &chunk("b", 0, 2, start + 2000, rerun)).await;
    app.settle().await;
    let m = app.batch_metrics("b").await;

    assert_eq!(m["status"], "in_progress");
    let r = &m["requests"];
    assert_eq!((r["reported"].as_u64(), r["completed"].as_u64()), (Some(5), Some(5)));
    assert_eq!(r["failed"].as_u64(), Some(0));
    assert_eq!(m["tokens"]["prompt"].as_u64(), Some(50));
    assert_eq!(m["error_types"], serde_json::json!([]));
    assert_close(&m["timing"]["latency_mean_ms"], 200.0);
    // Still running: no end, so no processing time, throughput or after-VRAM.
    assert!(m["timing"]["ended_at"].is_null());
    assert!(m["timing"]["throughput_rps"].is_null());
    assert!(m["vram"]["after_bytes"].is_null());
}

#[sqlx::test(migrator = "nightshift_metrics::store::MIGRATOR")]
async fn unknown_batch_is_not_found(pool: PgPool) {
    let app = spawn_app(pool).await;

    let response = app.get("/v1/batches/batch_nope/metrics").send().await.unwrap();

    let message = assert_error(response, 404, Some("not_found")).await;
    assert!(message.contains("batch_nope"), "{message}");
}

#[sqlx::test(migrator = "nightshift_metrics::store::MIGRATOR")]
async fn rolled_up_samples_still_give_before_after_and_peak(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mut plan = Plan::new("b", 0, 100, 0.2);
    plan.vram_after = 10.40;
    app.run(&plan).await;
    app.settle().await;
    let exact = app.batch_metrics("b").await["vram"].clone();
    let store = &app.state.store;
    let raw = || async {
        on_db!(store.db(), pool => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM metrics_gpu_samples",
        )
        .fetch_one(pool)
        .await)
        .unwrap()
    };

    // Past the raw window, the chunk samples tagged with the batch stay raw...
    let now = now_ms() + 1;
    store.rollup(now, plan.start - 86_400_000).await.unwrap();
    assert_eq!(raw().await, 2);
    // ... until they are past their own, longer window too.
    store.rollup(now, now).await.unwrap();
    assert_eq!(raw().await, 0);

    let v = app.batch_metrics("b").await["vram"].clone();
    assert_eq!(v["before_bytes"], exact["before_bytes"]);
    assert_eq!(v["after_bytes"], exact["after_bytes"]);
    assert_eq!(v["peak_bytes"].as_u64(), Some(bytes(10.9)));
}

#[sqlx::test(migrator = "nightshift_metrics::store::MIGRATOR")]
async fn rollup_keeps_min_max_avg_and_last_per_minute(pool: PgPool) {
    let app = spawn_app(pool).await;
    let minute = base_time() / 60_000 * 60_000;
    for (i, gib) in [1.0, 3.0, 2.0].into_iter().enumerate() {
        app.gpu(minute + i as i64 * 1000, gib, SampleTrigger::Periodic, None).await;
    }
    app.settle().await;
    let store = &app.state.store;
    store.rollup(now_ms(), now_ms()).await.unwrap();
    app.gpu(minute + 30_000, 6.0, SampleTrigger::Periodic, None).await;
    app.settle().await;
    store.rollup(now_ms(), now_ms()).await.unwrap();

    let row: (i64, i64, i64, f64, i64, i64) = on_db!(store.db(), pool => sqlx::query_as(
        "SELECT samples, min_used_bytes, max_used_bytes, avg_used_bytes, last_used_bytes, last_at \
         FROM metrics_gpu_minutes",
    )
    .fetch_one(pool)
    .await)
    .unwrap();

    assert_eq!(row.0, 4);
    assert_eq!((row.1, row.2), (bytes(1.0) as i64, bytes(6.0) as i64));
    assert!((row.3 - 3.0 * GIB).abs() < 1.0, "avg {}", row.3);
    assert_eq!((row.4, row.5), (bytes(6.0) as i64, minute + 30_000));
}
