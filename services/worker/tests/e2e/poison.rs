//! Inputs that once stopped a batch from ever ending: NUL characters in custom ids, lone
//! surrogates, and results larger than a queue message.

use nightshift_shared::openai::{BatchStatus, OutputLine};
use nightshift_testkit::stack::{Mode, Stack};
use ollama_sim::SimConfig;
use serde_json::{Value, json};

use crate::WORKER;
use std::collections::HashMap;
use std::time::Duration;

fn line(custom_id: &str, url: &str, body: Value) -> String {
    json!({"custom_id": custom_id, "method": "POST", "url": url, "body": body}).to_string() + "\n"
}

fn chat(custom_id: &str) -> String {
    line(
        custom_id,
        "/v1/chat/completions",
        json!({"model": "llama3.2:1b", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]}),
    )
}

/// Each custom id of `lines` exactly once across both files, in input order within each.
fn assert_each_once(want: &[String], output: &[OutputLine], errors: &[OutputLine]) {
    let position: HashMap<&str, usize> =
        want.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    for file in [output, errors] {
        let order: Vec<usize> = file.iter().map(|l| position[l.custom_id.as_str()]).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "a file is out of input order");
    }
    let mut seen: Vec<&str> = output.iter().chain(errors).map(|l| l.custom_id.as_str()).collect();
    seen.sort_unstable();
    let mut expected: Vec<&str> = want.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(seen, expected, "every custom_id exactly once, byte for byte");
}

pub async fn nul_and_odd_characters_in_custom_ids_come_back_byte_for_byte(mode: Mode) {
    let mut stack = Stack::start(mode, SimConfig::zero_latency(), &["--chunk-size", "10"]).await;
    stack.spawn_worker_process(WORKER, &["--concurrency", "4"]).await;
    let ids: Vec<String> = (0..60)
        .map(|i| match i % 4 {
            0 => format!("nul-\u{0}-{i}"),
            1 => format!("emoji-\u{1F600}-{i}"),
            2 => format!("ctrl-\u{1}\u{1f}\u{7f}-{i}"),
            _ => format!("quote-\"\\-{i}"),
        })
        .collect();
    let file: String = ids.iter().map(|id| chat(id)).collect();
    let poisoned = stack.submit(file.into_bytes(), "/v1/chat/completions").await;
    // A batch of someone else's beside it must not wait on it.
    let plain: String = (0..30).map(|i| chat(&format!("plain-{i}"))).collect();
    let neighbour = stack.submit(plain.into_bytes(), "/v1/chat/completions").await;

    for (batch, want) in
        [(poisoned, ids), (neighbour, (0..30).map(|i| format!("plain-{i}")).collect::<Vec<_>>())]
    {
        let done = stack.wait_final(&batch.id, Duration::from_secs(60)).await;
        assert_eq!(done.status, BatchStatus::Completed, "{:?}", done.errors);
        assert_eq!(done.request_counts.completed, want.len() as u64);
        let output = stack.lines(done.output_file_id.as_deref()).await;
        assert_each_once(&want, &output, &[]);
    }
}

pub async fn lone_surrogates_and_nul_model_names_fail_validation_with_their_lines(mode: Mode) {
    let mut stack = Stack::start(mode, SimConfig::zero_latency(), &[]).await;
    stack.spawn_worker_process(WORKER, &[]).await;
    let file = [
        chat("fine"),
        r#"{"custom_id":"\ud800","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}"#.to_owned() + "\n",
        r#"{"custom_id":"b","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"\udc00 alone"}]}}"#.to_owned() + "\n",
        line("c", "/v1/chat/completions", json!({"model": "m\u{0}x", "messages": []})),
        r#"{"custom_id":"d","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"\ud83d\ude00 paired"}]}}"#.to_owned() + "\n",
    ]
    .concat();
    let batch = stack.submit(file.into_bytes(), "/v1/chat/completions").await;
    let done = stack.wait_final(&batch.id, Duration::from_secs(30)).await;
    assert_eq!(done.status, BatchStatus::Failed);
    let errors = done.errors.unwrap().data;
    let got: Vec<(&str, Option<u64>)> = errors.iter().map(|e| (e.code.as_str(), e.line)).collect();
    assert_eq!(
        got,
        [
            ("invalid_json_line", Some(2)),
            ("invalid_json_line", Some(3)),
            ("invalid_value", Some(4))
        ]
    );
}

/// Embedding answers of every size: 3,072-dimension vectors (OpenAI's text-embedding-3-large) at
/// the simulator's full speed, several to a message, and one request of 10,000 inputs, whose
/// answer (some 40 MB) is larger than any NATS message.
pub async fn embeddings_of_every_size_complete(mode: Mode) {
    // A model of 3,072 dimensions; the 10,000-input request asks for 384 of them (Ollama cuts
    // and renormalises), about 40 MB of answer.
    let sim = SimConfig { parallel: 16, embed_dim: 3072, ..SimConfig::zero_latency() };
    let mut stack = Stack::start(mode, sim, &["--chunk-size", "50"]).await;
    stack.spawn_worker_process(WORKER, &["--concurrency", "16"]).await;
    let wide: String = (0..300)
        .map(|i| {
            line(
                &format!("wide-{i}"),
                "/v1/embeddings",
                json!({"model": "embed", "input": format!("text {i}")}),
            )
        })
        .collect();
    let inputs: Vec<String> = (0..10_000).map(|i| format!("input number {i}")).collect();
    let many = line(
        "many",
        "/v1/embeddings",
        json!({"model": "embed", "input": inputs, "dimensions": 384}),
    );
    let wide = stack.submit(wide.into_bytes(), "/v1/embeddings").await;
    let many = stack.submit(many.into_bytes(), "/v1/embeddings").await;

    let done = stack.wait_final(&wide.id, Duration::from_secs(120)).await;
    assert_eq!(done.status, BatchStatus::Completed);
    let output = stack.lines(done.output_file_id.as_deref()).await;
    let want: Vec<String> = (0..300).map(|i| format!("wide-{i}")).collect();
    assert_each_once(&want, &output, &[]);
    let body: Value =
        serde_json::from_str(output[7].response.as_ref().unwrap().body.get()).unwrap();
    assert_eq!(body["data"][0]["embedding"].as_array().unwrap().len(), 3072);

    let done = stack.wait_final(&many.id, Duration::from_secs(180)).await;
    assert_eq!(done.status, BatchStatus::Completed, "{:?}", done.request_counts);
    let output = stack.lines(done.output_file_id.as_deref()).await;
    assert_eq!(output.len(), 1);
    let body: Value =
        serde_json::from_str(output[0].response.as_ref().unwrap().body.get()).unwrap();
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 10_000);
    assert_eq!(data[9_999]["index"], 9_999);
    assert_eq!(data[9_999]["embedding"].as_array().unwrap().len(), 384);
    assert!(done.usage.input_tokens > 10_000);
}

/// Past the worker's limit, a result is that request's error, and the batch ends.
pub async fn a_result_over_the_limit_is_that_requests_error(mode: Mode) {
    let mut stack = Stack::start(mode, SimConfig::zero_latency(), &[]).await;
    stack.spawn_worker_process(WORKER, &["--max-result-bytes", "200000"]).await;
    let inputs: Vec<String> = (0..200).map(|i| format!("input {i}")).collect();
    let file = [
        line("small", "/v1/embeddings", json!({"model": "embed", "input": "one"})),
        line("huge", "/v1/embeddings", json!({"model": "embed", "input": inputs})),
    ]
    .concat();
    let batch = stack.submit(file.into_bytes(), "/v1/embeddings").await;
    let done = stack.wait_final(&batch.id, Duration::from_secs(60)).await;
    assert_eq!(done.status, BatchStatus::Completed);
    assert_eq!((done.request_counts.completed, done.request_counts.failed), (1, 1));
    let errors = stack.lines(done.error_file_id.as_deref()).await;
    assert_eq!(errors[0].custom_id, "huge");
    let error = errors[0].error.as_ref().unwrap();
    assert_eq!(error.code, "result_too_large");
    assert!(error.message.contains("WORKER_MAX_RESULT_BYTES"), "{}", error.message);
}
