//! The GPU sampler's Ollama fallback against a fake `/api/ps`, and the "no source" case.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use nightshift_shared::measurements::{SampleTrigger, VramSource};
use nightshift_worker::gpu::GpuSampler;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Serves `router` on a free port and returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn fake_ollama_with_two_models() -> Router {
    Router::new().route(
        "/api/ps",
        get(|| async {
            axum::Json(json!({"models": [
                {"name": "llama3.2:1b", "model": "llama3.2:1b", "size": 2_000_000_000u64,
                 "size_vram": 1_500_000_000u64},
                {"name": "qwen3:8b", "model": "qwen3:8b", "size": 6_000_000_000u64,
                 "size_vram": 5_250_000_000u64},
            ]}))
        }),
    )
}

#[tokio::test]
async fn ollama_fallback_sums_the_loaded_models_vram() {
    let url = serve(fake_ollama_with_two_models()).await;
    let sampler = GpuSampler::ollama_only("w1", "gpu-host", url.clone(), reqwest::Client::new());

    let sample = sampler.sample(SampleTrigger::ChunkStart, Some("batch_1")).await.unwrap();

    assert_eq!(sample.source, VramSource::OllamaPs);
    assert_eq!(sample.trigger, SampleTrigger::ChunkStart);
    assert_eq!(sample.batch_id.as_deref(), Some("batch_1"));
    assert_eq!((sample.worker_id.as_str(), sample.host.as_str()), ("w1", "gpu-host"));
    assert_eq!(sample.gpus.len(), 1);
    let gpu = &sample.gpus[0];
    assert_eq!(gpu.uuid, format!("ollama:{url}"));
    assert_eq!(gpu.name, "ollama models");
    assert_eq!(gpu.memory_used_bytes, 6_750_000_000);
    assert_eq!(gpu.memory_total_bytes, None);
    assert_eq!(gpu.memory_free_bytes, None);
    assert_eq!(gpu.utilization_pct, None);
    assert_eq!(gpu.temperature_c, None);
}

#[tokio::test]
async fn new_sampler_falls_back_to_ollama_when_nvml_is_absent() {
    let url = serve(fake_ollama_with_two_models()).await;
    let sampler = GpuSampler::new("w1", "h", Some(url), reqwest::Client::new());

    let sample = sampler.sample(SampleTrigger::Periodic, None).await.unwrap();

    // On a GPU host NVML answers instead; either way a real reading comes back.
    assert_eq!(Some(sample.source), sampler.source());
    assert!(!sample.gpus.is_empty());
}

#[tokio::test]
async fn a_backend_that_is_not_ollama_gives_no_sample() {
    let url = serve(Router::new().route("/v1/models", get(|| async { "{}" }))).await;
    let sampler = GpuSampler::ollama_only("w1", "h", url, reqwest::Client::new());

    assert!(sampler.sample(SampleTrigger::ChunkEnd, Some("b")).await.is_none());
    assert_eq!(sampler.source(), None, "a 404 on /api/ps disables the source");
    assert!(sampler.sample(SampleTrigger::Periodic, None).await.is_none());
}

#[tokio::test]
async fn unreachable_ollama_gives_no_sample_rather_than_zero() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let sampler = GpuSampler::ollama_only(
        "w1",
        "h",
        format!("http://127.0.0.1:{port}"),
        reqwest::Client::new(),
    );

    assert!(sampler.sample(SampleTrigger::Periodic, None).await.is_none());
    assert_eq!(sampler.source(), Some(VramSource::OllamaPs), "it may come back: keep asking");
}

#[tokio::test]
async fn ollama_erroring_gives_no_sample() {
    let url = serve(
        Router::new()
            .route("/api/ps", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") })),
    )
    .await;
    let sampler = GpuSampler::ollama_only("w1", "h", url, reqwest::Client::new());

    assert!(sampler.sample(SampleTrigger::Periodic, None).await.is_none());
}

#[tokio::test]
async fn no_source_yields_none_and_periodic_returns_at_once() {
    let sampler = Arc::new(GpuSampler::disabled("w1", "h"));
    assert!(sampler.sample(SampleTrigger::Periodic, None).await.is_none());

    let published = Arc::new(AtomicUsize::new(0));
    let count = published.clone();
    let run = sampler.run_periodic(
        Duration::from_millis(5),
        move |_| {
            count.fetch_add(1, Ordering::SeqCst);
            async {}
        },
        CancellationToken::new(),
    );
    tokio::time::timeout(Duration::from_secs(1), run).await.unwrap();
    assert_eq!(published.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn periodic_sampling_publishes_until_shutdown() {
    let url = serve(fake_ollama_with_two_models()).await;
    let sampler = Arc::new(GpuSampler::ollama_only("w1", "h", url, reqwest::Client::new()));
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(sampler.run_periodic(
        Duration::from_millis(10),
        move |sample| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(sample).await;
            }
        },
        shutdown.clone(),
    ));

    for _ in 0..3 {
        let sample =
            tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
        assert_eq!(sample.trigger, SampleTrigger::Periodic);
        assert_eq!(sample.gpus[0].memory_used_bytes, 6_750_000_000);
    }
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
}
