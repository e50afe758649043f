//! A graceful stop of the one process: the worker drains first, and the gateway records the
//! results of the chunks it finishes meanwhile, so nothing finished waits for the next start.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use nightshift_shared::db::Db;
use nightshift_shared::openai::BatchStatus;
use nightshift_testkit::stack::{Mode, Stack, assert_exactly_once, batch_done, chat_file};
use ollama_sim::SimConfig;
use std::time::Duration;

const CHUNK: u64 = 20;

#[tokio::test]
async fn a_graceful_stop_records_the_results_of_the_chunks_the_worker_drains() {
    // 150 ms a request, 4 at a time: a chunk of 20 runs for ~0.75 s, so chunks are in flight
    // whenever the stop comes.
    let sim = SimConfig { parallel: 4, latency_ms: Some(150), ..SimConfig::zero_latency() };
    let mut stack = Stack::start(Mode::Standalone, sim, &["--chunk-size", "20"]).await;
    stack.spawn_worker_process("", &["--concurrency", "4", "--prefetch-chunks", "2"]).await;
    let batch = stack.submit(chat_file(300), "/v1/chat/completions").await;
    let before = stack
        .wait_until(&batch.id, Duration::from_secs(60), |b| b.request_counts.completed >= 30)
        .await
        .request_counts
        .completed;

    stack.stop_gateway().await;

    let Db::Sqlite(gateway) = stack.gateway_db().await else { panic!("standalone is SQLite") };
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM batch_results WHERE batch_id = $1")
            .bind(&batch.id)
            .fetch_one(&gateway)
            .await
            .unwrap();
    let queue_file = stack.standalone_data_dir().join("queue.db");
    let Db::Sqlite(queue) = Db::sqlite_file(&queue_file, 1).await.unwrap() else { panic!() };
    let uncollected: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM messages WHERE stream = 'NIGHTSHIFT_RESULTS' AND acked_at IS NULL",
    )
    .fetch_one(&queue)
    .await
    .unwrap();
    assert_eq!(uncollected, 0, "results the worker finished were left for the next start");
    assert!(
        recorded as u64 > before,
        "the chunks in flight at the stop were finished and recorded"
    );
    assert_eq!(recorded as u64 % CHUNK, 0, "every started chunk was finished ({recorded} results)");

    // What was left resumes on the next start, once.
    stack.start_gateway().await;
    let done = stack
        .wait_until(&batch.id, Duration::from_secs(120), batch_done(BatchStatus::Completed))
        .await;
    let output = stack.lines(done.output_file_id.as_deref()).await;
    assert_exactly_once(300, &output, &[]);
}
