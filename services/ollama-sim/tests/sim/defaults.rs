//! The defaults are Ollama's: one slot per model, and only models it has (others 404 with
//! each endpoint's own text, the name as sent).

use std::time::{Duration, Instant};

use ollama_sim::SimConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{MODEL, TestSim};

/// The defaults, minus the load and service time the tests do not need.
fn ollama_defaults() -> SimConfig {
    SimConfig { latency_ms: Some(0), load_ms: 0, ..SimConfig::default() }
}

#[tokio::test]
async fn unknown_models_get_ollamas_404_texts_on_every_endpoint() {
    let app = TestSim::start(ollama_defaults()).await;
    let user = json!([{"role": "user", "content": "x"}]);
    let native = [
        ("/api/chat", json!({"model": "nope", "messages": user}), "model 'nope' not found"),
        ("/api/generate", json!({"model": "nope", "prompt": "x"}), "model 'nope' not found"),
        (
            "/api/embed",
            json!({"model": "nope", "input": "x"}),
            "model \"nope\" not found, try pulling it first",
        ),
    ];
    for (path, body, text) in native {
        let (status, _, raw) = app.post_raw(path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(serde_json::from_str::<Value>(&raw).unwrap(), json!({"error": text}), "{path}");
    }
    let v1 = [
        (
            "/v1/chat/completions",
            json!({"model": "nope", "messages": user}),
            "model 'nope' not found",
        ),
        ("/v1/completions", json!({"model": "nope", "prompt": "x"}), "model 'nope' not found"),
        (
            "/v1/embeddings",
            json!({"model": "nope", "input": "x"}),
            "model \"nope\" not found, try pulling it first",
        ),
    ];
    for (path, body, text) in v1 {
        let (status, answer) = app.post(path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        let expected = json!({"error": {"message": text, "type": "not_found_error", "param": null, "code": null}});
        assert_eq!(answer, expected, "{path}");
    }
}

#[tokio::test]
async fn a_model_that_is_had_answers_with_or_without_its_library_prefix() {
    let app = TestSim::start(ollama_defaults()).await;

    app.chat_ok("x", json!({})).await;
    app.chat_ok("x", json!({"model": "library/llama3.2:1b"})).await;
    let (status, body) = app.chat("x", json!({"model": "llama3.2"})).await;

    // llama3.2 means llama3.2:latest, which the sim does not have.
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("model 'llama3.2' not found"))
    );
    assert_eq!(app.ps().await[0]["name"], MODEL);
}

#[tokio::test]
async fn one_slot_per_model_by_default() {
    let config = SimConfig { latency_ms: Some(100), ..ollama_defaults() };
    let app = TestSim::start(config).await;
    app.chat_ok("warm", json!({})).await;

    let start = Instant::now();
    let (a, b) = futures::future::join(app.chat("a", json!({})), app.chat("b", json!({}))).await;

    assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK));
    assert!(start.elapsed() >= Duration::from_millis(195), "{:?}", start.elapsed());
}

#[tokio::test]
async fn a_pulled_model_is_then_known() {
    let app = TestSim::start(ollama_defaults()).await;
    assert_eq!(app.chat("x", json!({"model": "qwen3:4b"})).await.0, StatusCode::NOT_FOUND);

    let (status, _, _) =
        app.post_raw("/api/pull", json!({"model": "qwen3:4b", "stream": false})).await;

    assert_eq!(status, StatusCode::OK);
    app.chat_ok("x", json!({"model": "qwen3:4b"})).await;
}
