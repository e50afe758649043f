//! Ollama's scheduler: only requests waiting for a model load are bounded (then 503); a
//! loaded model's requests wait for a slot however many there are.

use std::time::{Duration, Instant};

use ollama_sim::SimConfig;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{MODEL, TestSim};

const BUSY: &str = "server busy, please try again.  maximum pending requests exceeded";

#[tokio::test]
async fn requests_for_a_loaded_model_wait_for_a_slot_and_never_get_503() {
    let config =
        SimConfig { parallel: 1, max_queue: 0, latency_ms: Some(20), ..SimConfig::zero_latency() };
    let app = TestSim::start(config).await;
    app.chat_ok("warm", json!({})).await;

    let start = Instant::now();
    let prompts: Vec<String> = (0..12).map(|i| format!("q{i}")).collect();
    let answers = futures::future::join_all(prompts.iter().map(|p| app.chat(p, json!({})))).await;

    assert!(answers.iter().all(|(s, _)| *s == StatusCode::OK), "{answers:?}");
    // One slot: they ran one after another.
    assert!(start.elapsed() >= Duration::from_millis(235), "{:?}", start.elapsed());
    assert_eq!(app.state().await["counters"]["busy_rejections"], 0);
}

#[tokio::test]
async fn each_loaded_model_has_its_own_slots() {
    let config = SimConfig { parallel: 1, latency_ms: Some(150), ..SimConfig::zero_latency() };
    let app = TestSim::start(config).await;
    for model in ["a:1b", "b:1b"] {
        app.chat_ok("warm", json!({"model": model})).await;
    }

    let start = Instant::now();
    let (a, b) = futures::future::join(
        app.chat("x", json!({"model": "a:1b"})),
        app.chat("x", json!({"model": "b:1b"})),
    )
    .await;

    assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK));
    assert!(start.elapsed() < Duration::from_millis(290), "{:?}", start.elapsed());
}

#[tokio::test]
async fn requests_for_a_model_being_loaded_wait_for_that_load_outside_the_queue() {
    let config = SimConfig { max_queue: 0, load_ms: 200, ..SimConfig::zero_latency() };
    let app = TestSim::start(config).await;

    let prompts: Vec<String> = (0..6).map(|i| format!("q{i}")).collect();
    let answers = futures::future::join_all(prompts.iter().map(|p| app.chat(p, json!({})))).await;

    assert!(answers.iter().all(|(s, _)| *s == StatusCode::OK), "{answers:?}");
    assert_eq!(app.state().await["counters"]["loads"], 1);
    for (_, body) in &answers {
        // Each waited for the one load (the last to arrive a little less than the first).
        assert!(body["load_duration"].as_u64().unwrap() >= 100_000_000, "{body}");
    }
}

#[tokio::test]
async fn loads_go_one_at_a_time_and_waiting_ones_show_as_pending() {
    let config = SimConfig { load_ms: 300, ..SimConfig::zero_latency() };
    let app = TestSim::start(config).await;

    let start = Instant::now();
    let both = futures::future::join(
        app.chat("x", json!({"model": "a:1b"})),
        app.chat("x", json!({"model": "b:1b"})),
    );
    let probe = async {
        tokio::time::sleep(Duration::from_millis(120)).await;
        app.state().await
    };
    let ((a, b), state) = futures::future::join(both, probe).await;

    assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK));
    assert_eq!(state["pending_loads"], 1, "{state}");
    assert!(start.elapsed() >= Duration::from_millis(590), "{:?}", start.elapsed());
}

#[tokio::test]
async fn full_load_queue_on_v1_is_an_openai_api_error() {
    let config = SimConfig { max_queue: 0, load_ms: 300, ..SimConfig::zero_latency() };
    let app = TestSim::start(config).await;
    let ask = |model: &'static str| {
        app.post(
            "/v1/chat/completions",
            json!({"model": model, "messages": [{"role": "user", "content": "x"}]}),
        )
    };

    let answers = futures::future::join(ask("a:1b"), ask("b:1b")).await;

    let (status, busy) =
        [answers.0, answers.1].into_iter().find(|(s, _)| *s != StatusCode::OK).unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        busy,
        json!({"error": {"message": BUSY, "type": "api_error", "param": null, "code": null}})
    );
}

#[tokio::test]
async fn an_evicted_model_reloads_through_the_queue() {
    let config = SimConfig { max_queue: 0, load_ms: 200, ..SimConfig::zero_latency() };
    let app = TestSim::start(config).await;
    app.chat_ok("warm", json!({})).await;
    app.post("/sim/evict", json!({})).await;

    // While the evicted model reloads, a cold load for another model has no room to wait.
    let reload = app.chat("again", json!({}));
    let other = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        app.chat("x", json!({"model": "other:1b"})).await
    };
    let (reload, other) = futures::future::join(reload, other).await;

    assert_eq!(reload.0, StatusCode::OK);
    assert_eq!(reload.1["model"], MODEL);
    assert_eq!((other.0, other.1["error"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some(BUSY)));
}
