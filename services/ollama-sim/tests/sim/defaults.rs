//! The defaults are Ollama's: one slot per model, and only models it has.

use std::time::{Duration, Instant};

use ollama_sim::SimConfig;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestSim;

/// The defaults, minus the load and service time the tests do not need.
fn ollama_defaults() -> SimConfig {
    SimConfig { latency_ms: Some(0), load_ms: 0, ..SimConfig::default() }
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
