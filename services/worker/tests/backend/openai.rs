//! OpenAI-compatible servers: the body goes through unchanged but for `stream` and the token
//! cap, the answer comes back as the server wrote it.

use crate::helpers::{Canned, FakeServer, config, json_of, raw};
use nightshift_shared::messages::{ResultOutcome, TokenUsage};
use nightshift_shared::openai::Endpoint;
use nightshift_worker::backend::{Backend, BackendKind};
use secrecy::SecretString;
use serde_json::json;

fn openai(url: &str, cap: Option<u32>) -> Backend {
    let mut cfg = config(BackendKind::OpenAi, url);
    cfg.api_key = Some(SecretString::from("sk-test"));
    cfg.max_tokens_cap = cap;
    Backend::new(cfg).unwrap()
}

#[tokio::test]
async fn chat_body_passes_through_with_stream_off_and_max_tokens_capped() {
    let fake = FakeServer::start(vec![Canned::json(200, json!({"id": "x", "choices": []}))]).await;
    // A base URL given with /v1 still reaches /v1/chat/completions, not /v1/v1/...
    let backend = openai(&format!("{}/v1/", fake.url), Some(128));

    let body = json!({"model": "Qwen/Qwen2.5-7B", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "max_tokens": 4096, "temperature": 0.3, "stream": true, "stream_options": {"include_usage": true},
        "guided_json": {"type": "object"}, "logprobs": true});
    backend.execute(Endpoint::ChatCompletions, &raw(body.clone())).await;

    let sent = fake.only_request();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.authorization.as_deref(), Some("Bearer sk-test"));
    let mut expected = body;
    expected["stream"] = json!(false);
    expected["max_tokens"] = json!(128);
    expected.as_object_mut().unwrap().remove("stream_options");
    assert_eq!(sent.body, expected);
}

#[tokio::test]
async fn answer_passes_through_with_its_usage_read() {
    let answer = r#"{
  "id": "chatcmpl-1",
  "object": "chat.completion",
  "model": "Qwen/Qwen2.5-7B",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello\nworld"}, "finish_reason": "stop"}],
  "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25, "prompt_tokens_details": {"cached_tokens": 16}}
}"#;
    let fake = FakeServer::start(vec![Canned::text(200, answer)]).await;

    let body = raw(json!({"model": "Qwen/Qwen2.5-7B", "messages": []}));
    let execution = openai(&fake.url, None).execute(Endpoint::ChatCompletions, &body).await;

    let ResultOutcome::Response { status_code, body } = &execution.outcome else {
        panic!("expected a response, got {:?}", execution.outcome);
    };
    assert_eq!(*status_code, 200);
    assert!(!body.get().contains('\n'), "an output line holds the body on one line");
    assert_eq!(json_of(body), serde_json::from_str::<serde_json::Value>(answer).unwrap());
    assert_eq!(
        execution.usage,
        Some(TokenUsage {
            prompt_tokens: Some(20),
            completion_tokens: Some(5),
            cached_tokens: Some(16)
        })
    );
    assert!(execution.timing.is_none());
    assert_eq!(execution.model.as_deref(), Some("Qwen/Qwen2.5-7B"));
}

#[tokio::test]
async fn server_error_body_passes_through_on_a_final_4xx() {
    let error = json!({"error": {"message": "The model `m` does not exist.", "type": "NotFoundError",
        "param": null, "code": 404}});
    let fake = FakeServer::start(vec![Canned::json(404, error.clone())]).await;

    let body = raw(json!({"model": "m", "input": "x"}));
    let execution = openai(&fake.url, Some(10)).execute(Endpoint::Embeddings, &body).await;

    let sent = fake.only_request();
    assert_eq!(sent.path, "/v1/embeddings");
    assert_eq!(sent.body, json!({"model": "m", "input": "x"}), "embeddings are sent untouched");
    let ResultOutcome::Response { status_code, body } = &execution.outcome else {
        panic!("expected a response, got {:?}", execution.outcome);
    };
    assert_eq!((*status_code, json_of(body)), (404, error));
    assert_eq!(execution.attempts, 1);
}

#[tokio::test]
async fn warm_up_asks_for_a_one_token_completion() {
    let fake = FakeServer::start(vec![Canned::json(200, json!({"id": "x", "choices": []}))]).await;

    let warm = openai(&fake.url, None).warm_up("Qwen/Qwen2.5-7B").await.unwrap();

    let sent = fake.only_request();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.body["max_tokens"], 1);
    assert_eq!(sent.body["model"], "Qwen/Qwen2.5-7B");
    assert_eq!(warm.load_duration, None);
}
