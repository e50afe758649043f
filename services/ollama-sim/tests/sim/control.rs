//! The /sim control endpoints and the in-process handle.

use std::time::{Duration, Instant};

use ollama_sim::SimConfig;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestSim;

#[tokio::test]
async fn config_patch_changes_behaviour_between_batches() {
    let app = TestSim::start(SimConfig::zero_latency()).await;
    assert_eq!(app.chat("a", json!({})).await.0, StatusCode::OK);

    let (status, config) = app.post("/sim/config", json!({"error_rate": 1.0})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(config["error_rate"], 1.0);
    assert_eq!(app.get("/sim/config").await["error_rate"], 1.0);
    assert_eq!(app.chat("b", json!({})).await.0, StatusCode::INTERNAL_SERVER_ERROR);

    app.post("/sim/config", json!({"error_rate": 0.0})).await;
    assert_eq!(app.chat("c", json!({})).await.0, StatusCode::OK);
}

#[tokio::test]
async fn bad_config_patch_is_refused_and_changes_nothing() {
    let app = TestSim::start(SimConfig::zero_latency()).await;

    let (status, body) = app.post("/sim/config", json!({"error_rate": 3.0})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("error_rate"));
    let (status, _) = app.post("/sim/config", json!({"no_such_setting": 1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    assert_eq!(app.get("/sim/config").await["error_rate"], 0.0);
}

#[tokio::test]
async fn patching_parallel_resizes_the_slots() {
    let config = SimConfig { parallel: 1, latency_ms: Some(200), ..SimConfig::zero_latency() };
    let app = TestSim::start(config).await;
    app.chat_ok("warm", json!({})).await;
    let both = || async {
        let start = Instant::now();
        let (a, b) =
            futures::future::join(app.chat("a", json!({})), app.chat("b", json!({}))).await;
        ((a.0, b.0), start.elapsed())
    };

    // One slot: the second request waits for the first (no 503 for a loaded model).
    let (statuses, one_slot) = both().await;
    assert_eq!(statuses, (StatusCode::OK, StatusCode::OK));
    assert!(one_slot >= Duration::from_millis(390), "{one_slot:?}");

    app.post("/sim/config", json!({"parallel": 2})).await;
    let (statuses, two_slots) = both().await;
    assert_eq!(statuses, (StatusCode::OK, StatusCode::OK));
    assert!(two_slots < Duration::from_millis(390), "{two_slots:?}");
}

#[tokio::test]
async fn sim_state_reports_counters_and_loaded_models() {
    let app = TestSim::start(SimConfig::zero_latency()).await;
    app.chat_ok("a", json!({})).await;

    let state = app.state().await;

    assert_eq!(state["counters"]["requests"], 1);
    assert_eq!(state["counters"]["completed"], 1);
    assert_eq!(state["counters"]["loads"], 1);
    assert_eq!((state["in_flight"].as_u64(), state["queue_depth"].as_u64()), (Some(0), Some(0)));
    assert_eq!(state["loaded_models"][0]["name"], "llama3.2:1b");
    assert_eq!(state["loaded_models"][0]["requests_served"], 1);
    assert_eq!(app.sim.state.snapshot().counters.completed, 1);
}

#[tokio::test]
async fn evict_endpoint_unloads_now() {
    let config = SimConfig { load_ms: 40, ..SimConfig::zero_latency() };
    let app = TestSim::start(config).await;
    app.chat_ok("a", json!({})).await;

    let (status, body) = app.post("/sim/evict", json!({})).await;

    assert_eq!((status, body["evicted"].as_u64()), (StatusCode::OK, Some(1)));
    assert!(app.ps().await.is_empty());
    let next = app.chat_ok("b", json!({})).await;
    assert!(next["load_duration"].as_u64().unwrap() >= 40_000_000);
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let app = TestSim::start(SimConfig::zero_latency()).await;
    let url = app.url("/");
    let client = reqwest::Client::new();
    assert!(client.get(&url).send().await.is_ok());

    drop(app);
    tokio::time::sleep(Duration::from_millis(50)).await;

    assert!(client.get(&url).send().await.is_err());
}
