//! Injected faults look to a client like the real failures they stand for.

use std::time::{Duration, Instant};

use ollama_sim::SimConfig;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{MODEL, TestSim, chat_body};

#[tokio::test]
async fn error_rate_one_answers_500_simulated_backend_error() {
    let app = TestSim::start(SimConfig { error_rate: 1.0, ..SimConfig::zero_latency() }).await;

    let (status, body) = app.chat("hi", json!({})).await;

    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body, json!({"error": "simulated backend error"}));
    let (status, body) = app
        .post(
            "/v1/chat/completions",
            json!({"model": MODEL, "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"]["message"], "simulated backend error");
    assert_eq!(app.state().await["counters"]["errors_injected"], 2);
}

#[tokio::test]
async fn drop_rate_one_gives_a_transport_error_not_a_status() {
    let app = TestSim::start(SimConfig { drop_rate: 1.0, ..SimConfig::zero_latency() }).await;

    let err = app
        .client
        .post(app.url("/api/chat"))
        .json(&chat_body("hi", json!({})))
        .send()
        .await
        .unwrap_err();

    // hyper's IncompleteMessage: the connection closed before any response.
    assert!(err.is_request() && err.status().is_none(), "{err:?}");
    assert!(!err.is_timeout(), "{err:?}");
    assert_eq!(app.state().await["counters"]["drops_injected"], 1);
}

#[tokio::test]
async fn timeout_rate_one_hangs_past_the_client_timeout() {
    let config = SimConfig { timeout_rate: 1.0, hang_ms: 5_000, ..SimConfig::zero_latency() };
    let app = TestSim::start(config).await;

    let err = app
        .client
        .post(app.url("/api/chat"))
        .timeout(Duration::from_millis(200))
        .json(&chat_body("hi", json!({})))
        .send()
        .await
        .unwrap_err();

    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(app.state().await["counters"]["hangs_injected"], 1);
}

#[tokio::test]
async fn slow_tail_multiplies_service_time() {
    let config = SimConfig {
        slow_tail_rate: 1.0,
        slow_tail_factor: 3.0,
        latency_ms: Some(50),
        load_ms: 0,
        ..SimConfig::default()
    };
    let app = TestSim::start(config).await;

    let start = Instant::now();
    app.chat_ok("hi", json!({})).await;

    assert!(start.elapsed() >= Duration::from_millis(150), "{:?}", start.elapsed());
}

#[tokio::test]
async fn throttle_slows_requests_after_the_first_n() {
    let config = SimConfig {
        throttle_after: Some(1),
        throttle_factor: 4.0,
        latency_ms: Some(30),
        load_ms: 0,
        ..SimConfig::default()
    };
    let app = TestSim::start(config).await;

    let start = Instant::now();
    app.chat_ok("a", json!({})).await;
    let first = start.elapsed();
    let start = Instant::now();
    app.chat_ok("b", json!({})).await;
    let second = start.elapsed();

    assert!(first < Duration::from_millis(100), "{first:?}");
    assert!(second >= Duration::from_millis(120), "{second:?}");
}

#[tokio::test]
async fn same_fault_seed_fails_the_same_requests() {
    let config = SimConfig { error_rate: 0.5, fault_seed: 7, ..SimConfig::zero_latency() };
    let mut runs = Vec::new();
    for _ in 0..2 {
        let app = TestSim::start(config.clone()).await;
        let mut statuses = Vec::new();
        for i in 0..20 {
            statuses.push(app.chat(&format!("q{i}"), json!({})).await.0);
        }
        runs.push(statuses);
    }

    assert_eq!(runs[0], runs[1]);
    assert!(
        runs[0].contains(&StatusCode::OK) && runs[0].contains(&StatusCode::INTERNAL_SERVER_ERROR)
    );
}
