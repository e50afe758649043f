//! keep_alive parsed exactly like Ollama's `api.Duration`, and kept by later requests that
//! do not give one.

use ollama_sim::SimConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{MODEL, TestSim};

async fn expires_in_ms(app: &TestSim) -> Option<u64> {
    app.loaded(MODEL).await.unwrap()["expires_in_ms"].as_u64()
}

#[tokio::test]
async fn numbers_are_seconds_and_strings_are_go_durations() {
    let app = TestSim::start(SimConfig::zero_latency()).await;
    let cases = [
        (json!(1.5), 1_500),
        (json!(300), 300_000),
        (json!("5m"), 300_000),
        (json!("1h30m"), 5_400_000),
        (json!("300ms"), 300),
        (json!("1.5s"), 1_500),
    ];
    for (keep_alive, ms) in cases {
        app.chat_ok("x", json!({"keep_alive": keep_alive})).await;
        let left = expires_in_ms(&app).await.unwrap();
        assert!(left <= ms && left + 100 >= ms, "{keep_alive}: {left} ms left");
    }
    for forever in [json!(-1), json!(-0.5), json!("-1m")] {
        app.chat_ok("x", json!({"keep_alive": forever})).await;
        assert_eq!(expires_in_ms(&app).await, None, "{forever}");
        let year: u32 = app.ps().await[0]["expires_at"].as_str().unwrap()[..4].parse().unwrap();
        assert!(year > 2200, "{forever}");
    }
    for zero in [json!(0), json!("0"), json!("-0")] {
        app.chat_ok("x", json!({"keep_alive": zero})).await;
        assert!(app.ps().await.is_empty(), "{zero}: unloaded right after the request");
    }
}

#[tokio::test]
async fn invalid_keep_alive_is_400_with_gos_text() {
    let app = TestSim::start(SimConfig::zero_latency()).await;
    let cases = [
        (json!("1.5"), r#"time: missing unit in duration "1.5""#),
        (json!("300"), r#"time: missing unit in duration "300""#),
        (json!("300.0"), r#"time: missing unit in duration "300.0""#),
        (json!("-1"), r#"time: missing unit in duration "-1""#),
        (json!(""), r#"time: invalid duration """#),
        (json!("5d"), r#"time: unknown unit "d" in duration "5d""#),
        (json!(true), "Unsupported type: 'bool'"),
        (json!({}), "Unsupported type: 'map[string]interface {}'"),
        (json!([]), "Unsupported type: '[]interface {}'"),
    ];
    for (keep_alive, text) in cases {
        for path in ["/api/chat", "/api/generate", "/api/embed"] {
            let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "x"}],
                "prompt": "x", "input": "x", "stream": false, "keep_alive": keep_alive});
            let (status, answer) = app.post(path, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {keep_alive}");
            assert_eq!(answer, json!({"error": text}), "{path} {keep_alive}");
        }
    }
}

#[tokio::test]
async fn a_request_without_keep_alive_keeps_the_models_own() {
    let app = TestSim::start(SimConfig::zero_latency()).await;
    app.chat_ok("x", json!({"keep_alive": "1h"})).await;

    for without in [json!({}), json!({"keep_alive": Value::Null})] {
        app.chat_ok("y", without).await;
        let left = expires_in_ms(&app).await.unwrap();
        assert!(left > 3_500_000, "{left} ms left: reset to the default");
    }
    let (status, _) = app
        .post(
            "/v1/chat/completions",
            json!({"model": MODEL, "messages": [{"role": "user", "content": "z"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(expires_in_ms(&app).await.unwrap() > 3_500_000, "/v1 has no keep_alive to apply");
}
