//! `logprobs`/`top_logprobs`: one entry per generated token, in Ollama's shape, natively and
//! on /v1/chat/completions.

use ollama_sim::SimConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{MODEL, TestSim};

/// Checks each entry's shape and returns the tokens.
fn tokens(logprobs: &Value, top: usize) -> Vec<String> {
    logprobs
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let token = e["token"].as_str().unwrap();
            assert!(e["logprob"].as_f64().unwrap() < 0.0, "{e}");
            let bytes: Vec<u8> =
                e["bytes"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap() as u8).collect();
            assert_eq!(bytes, token.as_bytes());
            let alternatives = e["top_logprobs"].as_array().map_or(0, Vec::len);
            assert_eq!(alternatives, top, "{e}");
            for alt in e["top_logprobs"].as_array().into_iter().flatten() {
                assert!(alt["token"].is_string() && alt["logprob"].as_f64().unwrap() < 0.0);
                assert!(alt["bytes"].is_array());
            }
            token.to_owned()
        })
        .collect()
}

#[tokio::test]
async fn native_chat_and_generate_report_one_logprob_per_token() {
    let app = TestSim::start(SimConfig::zero_latency()).await;

    let chat = app.chat_ok("hi", json!({"logprobs": true, "top_logprobs": 3})).await;
    let (status, generate) = app
        .post(
            "/api/generate",
            json!({"model": MODEL, "prompt": "hi", "stream": false, "logprobs": true}),
        )
        .await;

    let chat_tokens = tokens(&chat["logprobs"], 3);
    assert_eq!(chat_tokens.len() as u64, chat["eval_count"].as_u64().unwrap());
    assert_eq!(chat_tokens.concat(), chat["message"]["content"].as_str().unwrap());
    assert_eq!(status, StatusCode::OK);
    let generate_tokens = tokens(&generate["logprobs"], 0);
    assert_eq!(generate_tokens.concat(), generate["response"].as_str().unwrap());
    let again = app.chat_ok("hi", json!({"logprobs": true, "top_logprobs": 3})).await;
    assert_eq!(again["logprobs"], chat["logprobs"]);
    let plain = app.chat_ok("hi", json!({})).await;
    assert!(plain.get("logprobs").is_none(), "{plain}");
}

#[tokio::test]
async fn top_logprobs_outside_0_to_20_is_400_before_the_model_lookup() {
    let config = SimConfig { any_model: false, ..SimConfig::zero_latency() };
    let app = TestSim::start(config).await;

    for top in [21, -1] {
        let (status, body) =
            app.chat("hi", json!({"model": "nope", "logprobs": true, "top_logprobs": top})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body, json!({"error": "top_logprobs must be between 0 and 20"}));
    }
    let (status, body) = app
        .post(
            "/v1/chat/completions",
            json!({"model": MODEL, "messages": [{"role": "user", "content": "x"}], "top_logprobs": 21}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["message"], "top_logprobs must be between 0 and 20");
}

#[tokio::test]
async fn v1_chat_logprobs_are_choice_content_entries() {
    let app = TestSim::start(SimConfig::zero_latency()).await;
    let request = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}],
        "logprobs": true, "top_logprobs": 2});

    let (_, body) = app.post("/v1/chat/completions", request).await;

    let choice = &body["choices"][0];
    let tokens = tokens(&choice["logprobs"]["content"], 2);
    assert_eq!(tokens.len() as u64, body["usage"]["completion_tokens"].as_u64().unwrap());
    assert_eq!(tokens.concat(), choice["message"]["content"].as_str().unwrap());
}
