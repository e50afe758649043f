//! Cancel and expiry, end to end, with partial results.

use nightshift_shared::openai::BatchStatus;
use nightshift_testkit::stack::{Mode, Stack, assert_exactly_once, batch_done, chat_file};
use ollama_sim::SimConfig;

use crate::WORKER;
use std::time::Duration;

pub async fn cancelled_batch_ends_cancelled_with_partial_output(mode: Mode) {
    let sim = SimConfig { parallel: 4, latency_ms: Some(20), ..SimConfig::zero_latency() };
    let mut stack = Stack::start(mode, sim, &["--chunk-size", "20"]).await;
    stack.spawn_worker_process(WORKER, &["--concurrency", "4"]).await;
    let batch = stack.submit(chat_file(1000), "/v1/chat/completions").await;
    stack
        .wait_until(&batch.id, Duration::from_secs(60), |b| b.request_counts.completed >= 50)
        .await;

    let cancelling = stack.cancel(&batch.id).await;
    assert_eq!(cancelling.status, BatchStatus::Cancelling);
    let done = stack
        .wait_until(&batch.id, Duration::from_secs(60), batch_done(BatchStatus::Cancelled))
        .await;

    assert!(done.cancelled_at.is_some());
    let output = stack.lines(done.output_file_id.as_deref()).await;
    let errors = stack.lines(done.error_file_id.as_deref()).await;
    let (ok, failed) = assert_exactly_once(1000, &output, &errors);
    assert!(ok.len() >= 50 && ok.len() < 1000, "{} ran", ok.len());
    assert!(failed.values().all(|l| l.error.as_ref().unwrap().code == "batch_cancelled"));
    assert_eq!(done.request_counts.completed, ok.len() as u64);
    assert_eq!(done.request_counts.failed, failed.len() as u64);
}

pub async fn expired_batch_ends_expired_with_partial_output(mode: Mode) {
    let sim = SimConfig { parallel: 4, latency_ms: Some(20), ..SimConfig::zero_latency() };
    let mut stack = Stack::start(mode, sim, &["--chunk-size", "20"]).await;
    stack.spawn_worker_process(WORKER, &["--concurrency", "4"]).await;
    let batch = stack.submit(chat_file(1000), "/v1/chat/completions").await;
    stack
        .wait_until(&batch.id, Duration::from_secs(60), |b| b.request_counts.completed >= 50)
        .await;

    // The 24 h window cannot pass in a test: move its end into the past instead.
    let db = stack.gateway_db().await;
    nightshift_shared::on_db!(&db, pool => {
        sqlx::query("UPDATE batches SET expires_at = expires_at - 86400 WHERE id = $1")
            .bind(&batch.id)
            .execute(pool)
            .await
            .unwrap();
    });
    let done = stack
        .wait_until(&batch.id, Duration::from_secs(60), batch_done(BatchStatus::Expired))
        .await;

    assert!(done.expired_at.is_some());
    let output = stack.lines(done.output_file_id.as_deref()).await;
    let errors = stack.lines(done.error_file_id.as_deref()).await;
    let (ok, failed) = assert_exactly_once(1000, &output, &errors);
    assert!(ok.len() >= 50 && ok.len() < 1000, "{} ran", ok.len());
    assert!(failed.values().all(|l| l.error.as_ref().unwrap().code == "batch_expired"));
}
