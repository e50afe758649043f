//! Slots, queue limit, model loading and keep_alive as a client observes them.

use std::time::{Duration, Instant};

use ollama_sim::SimConfig;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestSim, chat_body, ms};

async fn concurrent_chats(app: &TestSim, n: usize) -> Vec<StatusCode> {
    let requests = (0..n).map(|i| {
        let req =
            app.client.post(app.url("/api/chat")).json(&chat_body(&format!("q{i}"), json!({})));
        async move { req.send().await.unwrap().status() }
    });
    futures::future::join_all(requests).await
}

#[tokio::test]
async fn two_slots_serve_four_requests_in_two_rounds() {
    let config =
        SimConfig { parallel: 2, latency_ms: Some(100), load_ms: 0, ..SimConfig::default() };
    let app = TestSim::start(config).await;

    let start = Instant::now();
    let statuses = concurrent_chats(&app, 4).await;
    let elapsed = start.elapsed();

    assert!(statuses.iter().all(|s| *s == StatusCode::OK));
    assert!(elapsed >= Duration::from_millis(195), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(350), "{elapsed:?}");
}

#[tokio::test]
async fn four_slots_serve_four_requests_at_once() {
    let config =
        SimConfig { parallel: 4, latency_ms: Some(150), load_ms: 0, ..SimConfig::default() };
    let app = TestSim::start(config).await;

    let start = Instant::now();
    concurrent_chats(&app, 4).await;

    // One round is 150 ms; two would be 300.
    assert!(start.elapsed() < Duration::from_millis(280), "{:?}", start.elapsed());
}

#[tokio::test]
async fn full_load_queue_answers_503_with_ollamas_text() {
    // One model loads at a time; one more may wait for the loader; the third is refused.
    let config = SimConfig { max_queue: 1, load_ms: 300, ..SimConfig::zero_latency() };
    let app = TestSim::start(config).await;

    let models = ["a:1b", "b:1b", "c:1b"];
    let requests = models.iter().map(|m| app.chat("q", json!({"model": m})));
    let answers = futures::future::join_all(requests).await;

    let busy: Vec<_> =
        answers.iter().filter(|(s, _)| *s == StatusCode::SERVICE_UNAVAILABLE).collect();
    assert_eq!(busy.len(), 1, "{answers:?}");
    assert_eq!(
        busy[0].1,
        json!({"error": "server busy, please try again.  maximum pending requests exceeded"})
    );
    assert_eq!(app.state().await["counters"]["busy_rejections"], 1);
}

#[tokio::test]
async fn first_request_pays_the_load_and_later_ones_do_not() {
    let config = SimConfig { load_ms: 150, ..SimConfig::zero_latency() };
    let app = TestSim::start(config).await;

    let first = app.chat_ok("a", json!({})).await;
    let second = app.chat_ok("b", json!({})).await;

    assert!(ms(&first["load_duration"]) >= 150.0, "{}", first["load_duration"]);
    assert!(ms(&first["total_duration"]) >= 150.0);
    assert!(ms(&second["load_duration"]) < 5.0, "{}", second["load_duration"]);
    assert_eq!(app.state().await["counters"]["loads"], 1);
}

#[tokio::test]
async fn keep_alive_zero_unloads_and_the_next_request_reloads() {
    let config = SimConfig { load_ms: 50, ..SimConfig::zero_latency() };
    let app = TestSim::start(config).await;

    app.chat_ok("a", json!({"keep_alive": "0"})).await;
    assert!(app.ps().await.is_empty());

    let next = app.chat_ok("b", json!({})).await;
    assert!(ms(&next["load_duration"]) >= 50.0);
    assert_eq!(app.state().await["counters"]["loads"], 2);
}

#[tokio::test]
async fn keep_alive_forever_keeps_the_model_loaded() {
    let app = TestSim::start(SimConfig::zero_latency()).await;

    app.chat_ok("a", json!({"keep_alive": -1})).await;

    let ps = app.ps().await;
    assert_eq!(ps.len(), 1);
    let year: u32 = ps[0]["expires_at"].as_str().unwrap()[..4].parse().unwrap();
    assert!(year > 2200, "{}", ps[0]["expires_at"]);
}

#[tokio::test]
async fn short_keep_alive_expires_and_reloads() {
    let config = SimConfig { load_ms: 30, ..SimConfig::zero_latency() };
    let app = TestSim::start(config).await;

    app.chat_ok("a", json!({"keep_alive": "100ms"})).await;
    assert_eq!(app.ps().await.len(), 1);
    tokio::time::sleep(Duration::from_millis(150)).await;

    assert!(app.ps().await.is_empty());
    let next = app.chat_ok("b", json!({})).await;
    assert!(ms(&next["load_duration"]) >= 30.0);
    assert_eq!(app.state().await["counters"]["unloads"], 1);
}

#[tokio::test]
async fn evict_every_n_requests_forces_a_reload() {
    let config = SimConfig { load_ms: 40, evict_every: Some(2), ..SimConfig::zero_latency() };
    let app = TestSim::start(config).await;

    let loads: Vec<f64> = {
        let mut out = Vec::new();
        for i in 0..4 {
            out.push(ms(&app.chat_ok(&format!("q{i}"), json!({})).await["load_duration"]));
        }
        out
    };

    assert!(loads[0] >= 40.0 && loads[2] >= 40.0, "{loads:?}");
    assert!(loads[1] < 5.0 && loads[3] < 5.0, "{loads:?}");
    let state = app.state().await;
    assert_eq!(
        (state["counters"]["evictions"].as_u64(), state["counters"]["loads"].as_u64()),
        (Some(2), Some(2))
    );
}

#[tokio::test]
async fn vram_leak_grows_size_vram_per_request() {
    let config = SimConfig { vram_leak_mb_per_request: 1.5, ..SimConfig::zero_latency() };
    let app = TestSim::start(config).await;

    app.chat_ok("a", json!({})).await;
    let after_one = app.ps().await[0]["size_vram"].as_u64().unwrap();
    app.chat_ok("b", json!({})).await;
    let after_two = app.ps().await[0]["size_vram"].as_u64().unwrap();

    let base = (2048 + 64 * 4) * 1024 * 1024;
    assert_eq!(after_one, base + 3 * 512 * 1024);
    assert_eq!(after_two, base + 3 * 1024 * 1024);
    assert_eq!(app.state().await["vram_bytes"], after_two);

    // Unloading frees the leak with the model.
    app.client.post(app.url("/sim/evict")).send().await.unwrap();
    app.chat_ok("c", json!({})).await;
    assert_eq!(app.ps().await[0]["size_vram"], base + 3 * 512 * 1024);
}

#[tokio::test]
async fn token_rate_model_sets_durations_when_no_fixed_latency() {
    let config = SimConfig {
        load_ms: 0,
        prompt_tokens_per_sec: 1e6,
        gen_tokens_per_sec: 1000.0,
        ..SimConfig::default()
    };
    let app = TestSim::start(config).await;

    let body = app.chat_ok("hi", json!({"options": {"num_predict": 20}})).await;

    // 20 tokens at 1000/s.
    assert!((ms(&body["eval_duration"]) - 20.0).abs() < 1.0, "{}", body["eval_duration"]);
    assert!(ms(&body["total_duration"]) >= 20.0);
}
