//! Nothing to generate (no prompt, no messages) loads the model, or unloads it with
//! keep_alive 0, and answers one plain object without metrics.

use std::time::{Duration, Instant};

use ollama_sim::SimConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{MODEL, TestSim, keys};

async fn load_reply(app: &TestSim, path: &str, body: Value) -> Value {
    let (status, content_type, raw) = app.post_raw(path, body).await;
    assert_eq!(status, StatusCode::OK, "{raw}");
    // A single JSON object even though `stream` defaults to true.
    assert!(content_type.starts_with("application/json"), "{content_type}");
    serde_json::from_str(&raw).unwrap()
}

#[tokio::test]
async fn empty_or_missing_prompt_loads_the_model_and_answers_load_without_metrics() {
    let config = SimConfig { load_ms: 150, ..SimConfig::zero_latency() };
    let app = TestSim::start(config).await;

    let start = Instant::now();
    let body = load_reply(&app, "/api/generate", json!({"model": MODEL})).await;

    assert!(start.elapsed() >= Duration::from_millis(150), "{:?}", start.elapsed());
    assert_eq!(keys(&body), ["created_at", "done", "done_reason", "model", "response"]);
    assert_eq!((body["response"].as_str(), body["done"].as_bool()), (Some(""), Some(true)));
    assert_eq!(body["done_reason"], "load");
    assert_eq!(app.ps().await.len(), 1);

    let again = load_reply(&app, "/api/generate", json!({"model": MODEL, "prompt": ""})).await;
    assert_eq!(again["done_reason"], "load");
    assert_eq!(app.state().await["counters"]["loads"], 1);
}

#[tokio::test]
async fn empty_or_missing_messages_load_the_model_and_answer_an_empty_assistant_message() {
    let config = SimConfig { load_ms: 100, ..SimConfig::zero_latency() };
    let app = TestSim::start(config).await;

    for body in [json!({"model": MODEL, "messages": []}), json!({"model": "other:1b"})] {
        let start = Instant::now();
        let reply = load_reply(&app, "/api/chat", body).await;

        assert!(start.elapsed() >= Duration::from_millis(100), "{:?}", start.elapsed());
        assert_eq!(keys(&reply), ["created_at", "done", "done_reason", "message", "model"]);
        assert_eq!(reply["message"], json!({"role": "assistant", "content": ""}));
        assert_eq!(
            (reply["done"].as_bool(), reply["done_reason"].as_str()),
            (Some(true), Some("load"))
        );
    }
    assert_eq!(app.ps().await.len(), 2);
}

#[tokio::test]
async fn keep_alive_zero_with_nothing_to_generate_unloads() {
    let app = TestSim::start(SimConfig::zero_latency()).await;
    app.chat_ok("warm", json!({})).await;
    load_reply(&app, "/api/generate", json!({"model": "other:1b"})).await;
    assert_eq!(app.ps().await.len(), 2);

    let chat =
        load_reply(&app, "/api/chat", json!({"model": MODEL, "messages": [], "keep_alive": 0}))
            .await;
    let generate =
        load_reply(&app, "/api/generate", json!({"model": "other:1b", "keep_alive": "0s"})).await;

    assert_eq!(chat["done_reason"], "unload");
    assert_eq!(chat["message"], json!({"role": "assistant", "content": ""}));
    assert_eq!(keys(&generate), ["created_at", "done", "done_reason", "model", "response"]);
    assert_eq!(generate["done_reason"], "unload");
    assert!(app.ps().await.is_empty());
}
