//! A wrong type in native `options` is Ollama's 500 with its text; unknown keys and nulls
//! are ignored.

use ollama_sim::SimConfig;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{MODEL, TestSim};

#[tokio::test]
async fn wrong_option_types_are_500_with_ollamas_texts() {
    let app = TestSim::start(SimConfig::zero_latency()).await;
    let cases = [
        (json!({"temperature": "hot"}), r#"option "temperature" must be of type float32"#),
        (json!({"num_predict": "10"}), r#"option "num_predict" must be of type integer"#),
        (json!({"use_mmap": "yes"}), r#"option "use_mmap" must be of type boolean"#),
        (json!({"stop": "\n"}), r#"option "stop" must be of type array"#),
        (json!({"stop": ["a", 1]}), r#"option "stop" must be of an array of strings"#),
    ];
    for (options, text) in cases {
        let (status, body) = app.chat("hi", json!({"options": options})).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{options}");
        assert_eq!(body, json!({"error": text}));
        let (status, body) = app
            .post(
                "/api/generate",
                json!({"model": MODEL, "prompt": "hi", "stream": false, "options": options}),
            )
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::INTERNAL_SERVER_ERROR, Some(text))
        );
    }
}

#[tokio::test]
async fn unknown_options_and_nulls_are_ignored_and_numbers_truncate() {
    let app = TestSim::start(SimConfig::zero_latency()).await;

    let body = app
        .chat_ok(
            "hi",
            json!({"options": {"mirostat": "x", "temperature": null, "num_predict": 4.9}}),
        )
        .await;

    assert_eq!(body["eval_count"], 4);
    assert_eq!(body["done_reason"], "length");
}

#[tokio::test]
async fn a_bad_option_fails_even_a_load_request_but_not_before_a_404() {
    let config = SimConfig { any_model: false, ..SimConfig::zero_latency() };
    let app = TestSim::start(config).await;
    let bad = json!({"temperature": "hot"});

    let (status, _) =
        app.post("/api/chat", json!({"model": MODEL, "messages": [], "options": bad})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(app.ps().await.is_empty(), "the failed load loads nothing");

    let (status, body) = app.chat("hi", json!({"model": "nope", "options": bad})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("model 'nope' not found"))
    );
}
