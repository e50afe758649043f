//! Workers killed mid-batch, and a backend that fails and hangs.

use nightshift_shared::openai::BatchStatus;
use nightshift_testkit::stack::{Mode, Stack, assert_exactly_once, batch_done, chat_file};
use ollama_sim::SimConfig;

use crate::WORKER;
use std::time::Duration;

pub async fn killed_workers_chunks_are_redelivered_and_written_once(mode: Mode) {
    let sim = SimConfig { parallel: 8, latency_ms: Some(10), ..SimConfig::zero_latency() };
    let mut stack = Stack::start(mode, sim, &["--chunk-size", "50"]).await;
    stack.spawn_worker_process(WORKER, &["--concurrency", "4"]).await;
    stack.spawn_worker_process(WORKER, &["--concurrency", "4"]).await;
    let batch = stack.submit(chat_file(3000), "/v1/chat/completions").await;
    let progressed =
        |n: u64| move |b: &nightshift_shared::openai::Batch| b.request_counts.completed >= n;

    stack.wait_until(&batch.id, Duration::from_secs(60), progressed(600)).await;
    stack.kill_worker(0).await;
    stack.spawn_worker_process(WORKER, &["--concurrency", "4"]).await;
    stack.wait_until(&batch.id, Duration::from_secs(60), progressed(1500)).await;
    stack.kill_worker(1).await;
    stack.spawn_worker_process(WORKER, &["--concurrency", "4"]).await;

    let done = stack
        .wait_until(&batch.id, Duration::from_secs(180), batch_done(BatchStatus::Completed))
        .await;
    assert_eq!((done.request_counts.completed, done.request_counts.failed), (3000, 0));
    let output = stack.lines(done.output_file_id.as_deref()).await;
    assert_exactly_once(3000, &output, &[]);
    // Finished requests of a redelivered chunk are not run again: only the ones in flight at
    // the kill (at most a worker's 2 chunks of 50) may have reached the backend twice.
    let calls = stack.sim.state.snapshot().counters.requests;
    assert!(calls <= 3000 + 2 * 100, "{calls} backend calls for 3000 requests");
}

pub async fn backend_errors_and_timeouts_are_retried_and_final_failures_reported(mode: Mode) {
    let sim = SimConfig {
        parallel: 16,
        latency_ms: Some(1),
        error_rate: 0.10,
        timeout_rate: 0.02,
        hang_ms: 3_000,
        fault_seed: 7,
        ..SimConfig::zero_latency()
    };
    let mut stack = Stack::start(mode, sim, &[]).await;
    stack.worker_args =
        ["--request-timeout-secs", "1", "--max-attempts", "2", "--concurrency", "16"]
            .map(String::from)
            .to_vec();
    stack.spawn_worker_process(WORKER, &[]).await;
    let batch = stack.submit(chat_file(1000), "/v1/chat/completions").await;
    let done = stack.wait_final(&batch.id, Duration::from_secs(180)).await;

    assert_eq!(done.status, BatchStatus::Completed);
    let counts = &done.request_counts;
    assert_eq!(counts.completed + counts.failed, 1000);
    let output = stack.lines(done.output_file_id.as_deref()).await;
    let errors = stack.lines(done.error_file_id.as_deref()).await;
    assert_exactly_once(1000, &output, &errors);
    // 12% of attempts fail; with a retry, about 1.4% of requests fail twice.
    assert!(counts.failed > 0 && counts.failed < 60, "{counts:?}");
    assert_eq!(errors.len() as u64, counts.failed);
    for line in &errors {
        let error = line.error.as_ref().expect("a final failure carries an error object");
        assert!(["backend_error", "backend_timeout"].contains(&error.code.as_str()), "{error:?}");
        assert!(error.message.contains("attempt"), "{}", error.message);
    }
    let snapshot = stack.sim.state.snapshot().counters;
    assert!(snapshot.errors_injected + snapshot.hangs_injected > counts.failed, "{snapshot:?}");
}

/// Real Ollama queues requests for a loaded model without bound and answers no 503: saturation
/// shows as latency. A worker with far more in flight than the server has slots must keep them
/// all busy, with no timeout and no retry.
pub async fn more_in_flight_than_slots_waits_in_the_server_without_timeouts(mode: Mode) {
    let sim = SimConfig { parallel: 2, latency_ms: Some(25), ..SimConfig::zero_latency() };
    let mut stack = Stack::start(mode, sim, &["--chunk-size", "50"]).await;
    stack
        .spawn_worker_process(WORKER, &["--concurrency", "16", "--request-timeout-secs", "10"])
        .await;
    let started = std::time::Instant::now();
    let batch = stack.submit(chat_file(400), "/v1/chat/completions").await;
    let done = stack.wait_final(&batch.id, Duration::from_secs(120)).await;
    let elapsed = started.elapsed();

    assert_eq!(done.status, BatchStatus::Completed);
    assert_eq!((done.request_counts.completed, done.request_counts.failed), (400, 0));
    let counters = stack.sim.state.snapshot().counters;
    assert_eq!(counters.requests, 400, "no request was sent twice");
    assert_eq!(counters.busy_rejections, 0);
    // Two slots of 25 ms serve 80 requests a second: 5 s for 400 when they never idle.
    assert!(elapsed < Duration::from_secs(12), "slots went idle: {elapsed:?} for 400 requests");
}
