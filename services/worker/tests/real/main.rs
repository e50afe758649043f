//! End to end against a real inference server with a real model: llama.cpp's `llama-server`
//! with Gemma 3 270M (`scripts/real-model.sh`), through `NIGHTSHIFT_BACKEND=openai`, on both
//! deployments. The simulator agrees with our worker by construction; this server does not.
//!
//! A separate test binary so that the model has the machine's cores: its tests take turns
//! (`RealModel` holds a lock) and run after the simulator's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod flows;

use nightshift_shared::messages::ResultOutcome;
use nightshift_shared::openai::Endpoint;
use nightshift_testkit::real_model::{MODEL, RealModel};
use nightshift_worker::backend::{Backend, BackendConfig, BackendKind};
use serde_json::json;

const WORKER: &str = env!("CARGO_BIN_EXE_nightshift-worker");

nightshift_testkit::on_both_deployments!(
    flows::real_model_answers_chat_and_completions_batches_in_openai_shape,
    flows::real_model_batch_cancelled_midway_ends_cancelled_with_each_request_once,
    flows::real_model_worker_killed_midway_loses_and_duplicates_nothing,
);

/// The backend client alone against the real server: what it sends is what llama.cpp reads,
/// and what llama.cpp cannot do is said once, not retried.
#[tokio::test]
async fn the_openai_backend_and_llama_server_agree() {
    let real = RealModel::start(2);
    let backend = Backend::new(BackendConfig {
        kind: BackendKind::OpenAi,
        base_url: format!("{}/v1", real.url),
        max_tokens_cap: Some(3),
        max_attempts: 3,
        ..BackendConfig::default()
    })
    .unwrap();
    let warm = backend.warm_up(MODEL).await.unwrap();
    assert!(warm.elapsed < std::time::Duration::from_secs(30));

    let body = serde_json::value::to_raw_value(&json!({
        "model": MODEL, "max_completion_tokens": 500,
        "logprobs": true, "top_logprobs": 2,
        "messages": [{"role": "user", "content": "Write a long story."}]}))
    .unwrap();
    let execution = backend.execute(Endpoint::ChatCompletions, &body).await;
    let ResultOutcome::Response { status_code: 200, body } = &execution.outcome else {
        panic!("{:?}", execution.outcome)
    };
    let body: serde_json::Value = serde_json::from_str(body.get()).unwrap();
    assert_eq!(body["usage"]["completion_tokens"], 3, "the cap reached the server: {body}");
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(
        body["choices"][0]["logprobs"]["content"][0]["top_logprobs"].as_array().unwrap().len(),
        2
    );
    assert_eq!(execution.usage.unwrap().completion_tokens, Some(3));

    // Started without --embeddings: a 501, answered once.
    let body = serde_json::value::to_raw_value(&json!({
        "model": MODEL, "input": "hello"}))
    .unwrap();
    let execution = backend.execute(Endpoint::Embeddings, &body).await;
    assert_eq!(execution.attempts, 1);
    let ResultOutcome::Response { status_code: 501, body } = &execution.outcome else {
        panic!("{:?}", execution.outcome)
    };
    assert!(body.get().contains("--embeddings"), "{}", body.get());
}
