//! The batch flows run against the real model.

use nightshift_shared::openai::{BatchStatus, OutputLine};
use nightshift_testkit::real_model::{MODEL, RealModel};
use nightshift_testkit::stack::{Mode, Stack, assert_exactly_once, batch_done};
use ollama_sim::SimConfig;
use serde_json::{Value, json};
use std::time::Duration;

use crate::WORKER;
/// The server's parallel slots, and the worker's requests in flight.
const SLOTS: usize = 4;

fn chat_file(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| {
            json!({"custom_id": format!("req-{i}"), "method": "POST", "url": "/v1/chat/completions",
                   "body": {"model": MODEL, "max_completion_tokens": 4, "temperature": 0,
                            "messages": [{"role": "system", "content": "Answer with one word."},
                                         {"role": "user", "content": format!("Say the number {i}.")}]}})
            .to_string()
                + "\n"
        })
        .collect::<String>()
        .into_bytes()
}

fn completions_file(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| {
            json!({"custom_id": format!("req-{i}"), "method": "POST", "url": "/v1/completions",
                   "body": {"model": MODEL, "max_tokens": 4, "prompt": format!("{i} plus one is")}})
            .to_string()
                + "\n"
        })
        .collect::<String>()
        .into_bytes()
}

/// A stack whose workers talk to `real` as an OpenAI-compatible server.
async fn stack(mode: Mode, real: &RealModel, gateway_args: &[&str]) -> Stack {
    let mut stack = Stack::start(mode, SimConfig::zero_latency(), gateway_args).await;
    stack.worker_args = [
        "--backend",
        "openai",
        "--openai-base-url",
        &real.url,
        "--concurrency",
        &SLOTS.to_string(),
        "--models",
        MODEL,
        "--request-timeout-secs",
        "120",
    ]
    .map(String::from)
    .to_vec();
    stack
}

/// Every success body parses with the OpenAI SDK's own type `sdk_type` (a pydantic model), and
/// the usage the server wrote in them adds up to the batch's.
async fn assert_sdk_parses(output: &[OutputLine], sdk_type: &str) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bodies.jsonl");
    let bodies: String =
        output.iter().map(|l| l.response.as_ref().unwrap().body.get().to_owned() + "\n").collect();
    std::fs::write(&path, bodies).unwrap();
    let (module, class) = sdk_type.rsplit_once('.').unwrap();
    let check = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import json,sys\nfrom {module} import {class}\nn=0\n\
             for line in open(sys.argv[1]):\n    {class}.model_validate(json.loads(line)); n+=1\n\
             print(n)"
        ))
        .arg(&path)
        .output()
        .await
        .unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), output.len().to_string());
    let mut sums = (0, 0);
    for line in output {
        let body: Value = serde_json::from_str(line.response.as_ref().unwrap().body.get()).unwrap();
        sums.0 += body["usage"]["prompt_tokens"].as_u64().unwrap();
        sums.1 += body["usage"]["completion_tokens"].as_u64().unwrap();
        assert!(body["usage"]["completion_tokens"].as_u64().unwrap() <= 4, "{body}");
    }
    sums
}

pub async fn real_model_answers_chat_and_completions_batches_in_openai_shape(mode: Mode) {
    let real = RealModel::start(SLOTS);
    let mut stack = stack(mode, &real, &["--chunk-size", "25"]).await;
    stack.spawn_worker_process(WORKER, &[]).await;
    let chat = stack.submit(chat_file(120), "/v1/chat/completions").await;
    let completions = stack.submit(completions_file(120), "/v1/completions").await;

    for (batch, sdk_type) in
        [(chat, "openai.types.chat.ChatCompletion"), (completions, "openai.types.Completion")]
    {
        let done = stack.wait_final(&batch.id, Duration::from_secs(300)).await;
        assert_eq!(done.status, BatchStatus::Completed, "{:?}", done.request_counts);
        assert_eq!((done.request_counts.completed, done.request_counts.failed), (120, 0));
        let output = stack.lines(done.output_file_id.as_deref()).await;
        assert_exactly_once(120, &output, &[]);
        let (prompt, completion) = assert_sdk_parses(&output, sdk_type).await;
        assert!(prompt > 0 && completion > 0);
        assert_eq!((done.usage.input_tokens, done.usage.output_tokens), (prompt, completion));
        let first: Value =
            serde_json::from_str(output[0].response.as_ref().unwrap().body.get()).unwrap();
        assert_eq!(first["model"], MODEL);
        // llama.cpp reports what its prompt cache saved; the batch carries it.
        assert!(first["usage"]["prompt_tokens_details"]["cached_tokens"].is_u64(), "{first}");
    }
}

pub async fn real_model_batch_cancelled_midway_ends_cancelled_with_each_request_once(mode: Mode) {
    let real = RealModel::start(SLOTS);
    let mut stack = stack(mode, &real, &["--chunk-size", "10"]).await;
    stack.spawn_worker_process(WORKER, &[]).await;
    let batch = stack.submit(chat_file(200), "/v1/chat/completions").await;
    stack
        .wait_until(&batch.id, Duration::from_secs(120), |b| b.request_counts.completed >= 20)
        .await;
    stack.cancel(&batch.id).await;

    let done = stack
        .wait_until(&batch.id, Duration::from_secs(180), batch_done(BatchStatus::Cancelled))
        .await;
    let output = stack.lines(done.output_file_id.as_deref()).await;
    let errors = stack.lines(done.error_file_id.as_deref()).await;
    let (_, failed) = assert_exactly_once(200, &output, &errors);
    assert!(
        output.len() >= 20 && !failed.is_empty(),
        "{} done, {} not",
        output.len(),
        failed.len()
    );
    assert!(failed.values().all(|l| l.error.as_ref().unwrap().code == "batch_cancelled"));
    assert_sdk_parses(&output, "openai.types.chat.ChatCompletion").await;
}

pub async fn real_model_worker_killed_midway_loses_and_duplicates_nothing(mode: Mode) {
    let real = RealModel::start(SLOTS);
    let mut stack = stack(mode, &real, &["--chunk-size", "10"]).await;
    stack.spawn_worker_process(WORKER, &[]).await;
    let batch = stack.submit(chat_file(160), "/v1/chat/completions").await;
    stack
        .wait_until(&batch.id, Duration::from_secs(120), |b| b.request_counts.completed >= 40)
        .await;
    stack.kill_worker(0).await;
    stack.spawn_worker_process(WORKER, &[]).await;

    let done = stack
        .wait_until(&batch.id, Duration::from_secs(240), batch_done(BatchStatus::Completed))
        .await;
    assert_eq!((done.request_counts.completed, done.request_counts.failed), (160, 0));
    let output = stack.lines(done.output_file_id.as_deref()).await;
    assert_exactly_once(160, &output, &[]);
    assert_sdk_parses(&output, "openai.types.chat.ChatCompletion").await;
}
