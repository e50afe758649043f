//! The happy path at size, and a collector restart.

use nightshift_shared::openai::BatchStatus;
use nightshift_testkit::stack::{Mode, Stack, assert_exactly_once, batch_done, chat_file};
use ollama_sim::SimConfig;

use crate::WORKER;
use std::time::Duration;

pub async fn two_workers_answer_2000_requests_exactly_once_in_input_order(mode: Mode) {
    let sim = SimConfig { parallel: 8, ..SimConfig::zero_latency() };
    let mut stack = Stack::start(mode, sim, &[]).await;
    stack.spawn_worker_process(WORKER, &["--concurrency", "4", "--models", "llama3.2:1b"]).await;
    stack.spawn_worker_process(WORKER, &["--concurrency", "4"]).await;

    let batch = stack.submit(chat_file(2000), "/v1/chat/completions").await;
    let done = stack.wait_final(&batch.id, Duration::from_secs(120)).await;

    assert_eq!(done.status, BatchStatus::Completed);
    assert_eq!((done.request_counts.completed, done.request_counts.failed), (2000, 0));
    assert!(done.finalizing_at.is_some() && done.completed_at.is_some());
    assert!(done.usage.input_tokens > 0 && done.usage.output_tokens > 0);
    assert_eq!(done.usage.total_tokens, done.usage.input_tokens + done.usage.output_tokens);
    assert!(done.error_file_id.is_none());
    let output = stack.lines(done.output_file_id.as_deref()).await;
    let (ok, _) = assert_exactly_once(2000, &output, &[]);
    let first = &ok["req-0"];
    let response = first.response.as_ref().unwrap();
    assert_eq!(response.status_code, 200);
    assert!(first.id.starts_with("batch_req_") && first.error.is_none());
    let body: serde_json::Value = serde_json::from_str(response.body.get()).unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert!(body["usage"]["completion_tokens"].as_u64().unwrap() <= 16);

    // The OpenAI SDK's own types accept every body.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("output.jsonl");
    let text: String = output.iter().map(|l| serde_json::to_string(l).unwrap() + "\n").collect();
    std::fs::write(&path, text).unwrap();
    let check = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import json,sys\nfrom openai.types.chat import ChatCompletion\n\
             n=0\nfor line in open(sys.argv[1]):\n    \
             ChatCompletion.model_validate(json.loads(line)['response']['body']); n+=1\n\
             print(n)",
        )
        .arg(&path)
        .output()
        .await
        .unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), "2000");
}

pub async fn collector_restarted_mid_batch_loses_and_duplicates_nothing(mode: Mode) {
    let sim = SimConfig { parallel: 8, latency_ms: Some(5), ..SimConfig::zero_latency() };
    let mut stack = Stack::start(mode, sim, &[]).await;
    stack.spawn_worker_process(WORKER, &["--concurrency", "8"]).await;
    let batch = stack.submit(chat_file(1500), "/v1/chat/completions").await;
    stack
        .wait_until(&batch.id, Duration::from_secs(60), |b| b.request_counts.completed >= 300)
        .await;

    stack.stop_gateway().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stack.start_gateway().await;

    let done = stack
        .wait_until(&batch.id, Duration::from_secs(120), batch_done(BatchStatus::Completed))
        .await;
    assert_eq!((done.request_counts.completed, done.request_counts.failed), (1500, 0));
    let output = stack.lines(done.output_file_id.as_deref()).await;
    assert_exactly_once(1500, &output, &[]);
}

pub async fn embeddings_and_completions_batches_come_back_in_openai_shape(mode: Mode) {
    let mut stack = Stack::start(mode, SimConfig::zero_latency(), &[]).await;
    stack.spawn_worker_process(WORKER, &[]).await;
    let line = |i: usize, url: &str, body: serde_json::Value| {
        serde_json::json!({"custom_id": format!("req-{i}"), "method": "POST", "url": url, "body": body})
            .to_string()
            + "\n"
    };
    let embed: String = (0..20)
        .map(|i| {
            line(
                i,
                "/v1/embeddings",
                serde_json::json!({"model": "m", "input": format!("text {i}")}),
            )
        })
        .collect();
    let complete: String = (0..20)
        .map(|i| {
            line(
                i,
                "/v1/completions",
                serde_json::json!({"model": "m", "prompt": format!("p {i}")}),
            )
        })
        .collect();
    let e = stack.submit(embed.into_bytes(), "/v1/embeddings").await;
    let c = stack.submit(complete.into_bytes(), "/v1/completions").await;
    for (batch, object) in [(e, "list"), (c, "text_completion")] {
        let done = stack.wait_final(&batch.id, Duration::from_secs(60)).await;
        assert_eq!(done.status, BatchStatus::Completed);
        let output = stack.lines(done.output_file_id.as_deref()).await;
        let (ok, _) = assert_exactly_once(20, &output, &[]);
        let body: serde_json::Value =
            serde_json::from_str(ok["req-3"].response.as_ref().unwrap().body.get()).unwrap();
        assert_eq!(body["object"], object);
    }
}
