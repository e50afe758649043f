//! The /v1 layer answers like Ollama's `middleware/openai.go`, quirks included.

use ollama_sim::SimConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{MODEL, TestSim};

fn chat(extra: Value) -> Value {
    let mut body =
        json!({"model": MODEL, "messages": [{"role": "user", "content": "hello there"}]});
    if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
        b.extend(extra);
    }
    body
}

fn invalid_request(message: &str) -> Value {
    json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}})
}

#[tokio::test]
async fn empty_messages_are_refused_before_the_model_is_looked_up() {
    let config = SimConfig { any_model: false, ..SimConfig::zero_latency() };
    let app = TestSim::start(config).await;

    for body in [json!({"model": "nope", "messages": []}), json!({"model": "nope"})] {
        let (status, answer) = app.post("/v1/chat/completions", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(answer, invalid_request("[] is too short - 'messages'"));
    }
}

#[tokio::test]
async fn empty_prompt_completion_loads_and_finishes_with_load() {
    let config = SimConfig { load_ms: 80, ..SimConfig::zero_latency() };
    let app = TestSim::start(config).await;

    let (status, body) = app.post("/v1/completions", json!({"model": MODEL, "prompt": ""})).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["object"], "text_completion");
    assert_eq!(body["system_fingerprint"], "fp_ollama");
    assert_eq!(body["choices"][0]["text"], "");
    assert_eq!(body["choices"][0]["finish_reason"], "load");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
    );
    assert_eq!(app.ps().await.len(), 1);
}

#[tokio::test]
async fn only_max_tokens_caps_generation() {
    let app = TestSim::start(SimConfig::zero_latency()).await;

    let (_, ignored) =
        app.post("/v1/chat/completions", chat(json!({"max_completion_tokens": 3}))).await;
    let (_, capped) = app.post("/v1/chat/completions", chat(json!({"max_tokens": 3}))).await;

    assert_eq!(ignored["choices"][0]["finish_reason"], "stop");
    assert!(ignored["usage"]["completion_tokens"].as_u64().unwrap() >= 16, "{ignored}");
    assert_eq!(capped["choices"][0]["finish_reason"], "length");
    assert_eq!(capped["usage"]["completion_tokens"], 3);
}

#[tokio::test]
async fn reasoning_effort_takes_ollamas_values_and_the_reasoning_object_wins() {
    let app = TestSim::start(SimConfig::zero_latency()).await;
    for effort in ["none", "minimal", "low", "medium", "high", "xhigh", "ultra", "max"] {
        let (status, body) =
            app.post("/v1/chat/completions", chat(json!({"reasoning_effort": effort}))).await;
        assert_eq!(status, StatusCode::OK, "{effort}: {body}");
    }
    let refused = invalid_request(
        "invalid reasoning value: \"extreme\" (must be \"minimal\", \"low\", \"medium\", \"high\", \"xhigh\", \"ultra\", \"max\", or \"none\")",
    );

    let (status, body) =
        app.post("/v1/chat/completions", chat(json!({"reasoning_effort": "extreme"}))).await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, refused.clone()));
    let (status, body) = app
        .post(
            "/v1/chat/completions",
            chat(json!({"reasoning": {"effort": "extreme"}, "reasoning_effort": "high"})),
        )
        .await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, refused));
    let (status, _) = app
        .post(
            "/v1/chat/completions",
            chat(json!({"reasoning": {"effort": "low"}, "reasoning_effort": "extreme"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn completions_carry_fingerprint_and_a_current_created() {
    let app = TestSim::start(SimConfig::zero_latency()).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();

    let (_, chat_body) = app.post("/v1/chat/completions", chat(json!({}))).await;
    let (_, completion) =
        app.post("/v1/completions", json!({"model": MODEL, "prompt": "once"})).await;

    for body in [&chat_body, &completion] {
        assert_eq!(body["system_fingerprint"], "fp_ollama");
        assert!(body["created"].as_u64().unwrap().abs_diff(now) <= 2, "{body}");
    }
    assert!(chat_body["choices"][0].get("logprobs").is_none(), "{chat_body}");
}

#[tokio::test]
async fn streamed_chat_ends_with_an_empty_delta_finish_chunk() {
    let app = TestSim::start(SimConfig::zero_latency()).await;

    let sse = app
        .client
        .post(app.url("/v1/chat/completions"))
        .json(&chat(json!({"stream": true, "stream_options": {"include_usage": true}})))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let events: Vec<Value> = sse
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(events.len(), 3, "{sse}");
    assert_eq!(events[1]["choices"][0]["delta"], json!({}));
    assert_eq!(events[1]["choices"][0]["finish_reason"], "stop");
    assert_eq!(events[2]["choices"], json!([]));
    assert!(events.iter().all(|e| e["created"] == events[0]["created"]));
}
