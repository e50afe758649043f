//! `/v1/gpus`, the Prometheus gauges, health, and telemetry the service cannot read.

use crate::helpers::*;
use nightshift_shared::measurements::{ModelReload, SampleTrigger};
use nightshift_shared::subjects;
use sqlx::PgPool;

#[sqlx::test(migrator = "nightshift_metrics::store::MIGRATOR")]
async fn gpus_show_the_latest_reading_of_each_gpu_across_workers(pool: PgPool) {
    let app = spawn_app(pool).await;
    let t = base_time();
    let sample = |worker, host, gpu, at, gib| {
        gpu_sample(worker, host, gpu, at, gib, SampleTrigger::Periodic, None)
    };
    app.publish(subjects::TELEMETRY_GPU, &sample("w1", "h1", "GPU-1", t, 10.0)).await;
    app.publish(subjects::TELEMETRY_GPU, &sample("w1", "h1", "GPU-1", t + 2000, 11.0)).await;
    // A late, older reading must not replace the newer one.
    app.publish(subjects::TELEMETRY_GPU, &sample("w1", "h1", "GPU-1", t + 1000, 70.0)).await;
    app.publish(subjects::TELEMETRY_GPU, &sample("w2", "h2", "GPU-2", t + 500, 20.0)).await;
    app.settle().await;

    let gpus = app.get_json("/v1/gpus").await;

    let data = gpus["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{gpus}");
    assert_eq!((data[0]["host"].as_str(), data[0]["gpu"].as_str()), (Some("h1"), Some("GPU-1")));
    assert_eq!(data[0]["worker_id"], "w1");
    assert_eq!(data[0]["source"], "nvml");
    assert_eq!(data[0]["at"].as_i64(), Some(t + 2000));
    assert_eq!(data[0]["memory_used_bytes"].as_u64(), Some(bytes(11.0)));
    assert_eq!(data[0]["utilization_pct"], 87);
    assert_eq!(data[0]["temperature_c"], 61);
    assert_eq!(data[1]["worker_id"], "w2");
    assert_eq!(data[1]["memory_used_bytes"].as_u64(), Some(bytes(20.0)));

    let text = app.get("/metrics").send().await.unwrap().text().await.unwrap();
    let used =
        format!("nightshift_gpu_memory_used_bytes{{gpu=\"GPU-1\",worker=\"w1\"}} {}", bytes(11.0));
    assert!(text.contains(&used), "{text}");
    assert!(
        text.contains("nightshift_gpu_memory_total_bytes{gpu=\"GPU-2\",worker=\"w2\"} 85520809984")
    );
    assert!(text.contains("nightshift_gpu_utilization_percent{gpu=\"GPU-1\",worker=\"w1\"} 87"));
    assert!(text.contains("nightshift_gpu_temperature_celsius{gpu=\"GPU-1\",worker=\"w1\"} 61"));
    assert!(text.contains("nightshift_metrics_telemetry_messages_total{kind=\"gpu\"} 4"), "{text}");
}

#[sqlx::test(migrator = "nightshift_metrics::store::MIGRATOR")]
async fn reloads_are_counted_once_and_garbage_is_dropped(pool: PgPool) {
    let app = spawn_app(pool).await;
    let reload = ModelReload {
        worker_id: "w1".into(),
        model: "llama3.2:1b".into(),
        at: base_time(),
        load_ms: 25_000.0,
        batch_id: None,
    };
    app.publish(subjects::TELEMETRY_RELOADS, &reload).await;
    app.publish(subjects::TELEMETRY_RELOADS, &reload).await;
    app.publish(subjects::TELEMETRY_GPU, &"not a sample").await;
    app.settle().await;

    let text = app.get("/metrics").send().await.unwrap().text().await.unwrap();

    assert!(
        text.contains("nightshift_model_reloads_total{model=\"llama3.2:1b\",worker=\"w1\"} 1"),
        "{text}"
    );
    assert!(text.contains("nightshift_metrics_telemetry_messages_total{kind=\"invalid\"} 1"));
    let health = app.get_json("/healthz").await;
    assert_eq!(health["status"], "ok");
    let ready = app.get_json("/readyz").await;
    assert_eq!((ready["postgres"].as_str(), ready["nats"].as_str()), (Some("ok"), Some("ok")));
}
