//! The plain direct client: `concurrency` loops posting `/api/chat` to the backend until `n`
//! requests are answered, the most the backend can do with no pipeline in front of it.

use anyhow::Context;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// What one direct run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DirectRun {
    pub requests: u64,
    pub elapsed: Duration,
}

impl DirectRun {
    pub fn rate(&self) -> Option<f64> {
        crate::stats::rate(self.requests, self.elapsed)
    }
}

pub async fn saturate(
    http: &reqwest::Client,
    sim_url: &str,
    n: u64,
    concurrency: usize,
) -> anyhow::Result<DirectRun> {
    let url = format!("{sim_url}/api/chat");
    saturate_with(http, &url, n, concurrency, Arc::new(crate::input::ollama_chat)).await
}

/// `concurrency` loops posting `body(i)` to `url` until `n` requests are answered.
pub async fn saturate_with(
    http: &reqwest::Client,
    url: &str,
    n: u64,
    concurrency: usize,
    body: Arc<dyn Fn(u64) -> serde_json::Value + Send + Sync>,
) -> anyhow::Result<DirectRun> {
    let next = Arc::new(AtomicU64::new(1));
    let url: Arc<str> = url.into();
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (http, next, url, body) = (http.clone(), next.clone(), url.clone(), body.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i > n {
                    return anyhow::Ok(());
                }
                let response =
                    http.post(&*url).json(&body(i)).send().await.context("direct request")?;
                let status = response.status();
                response.bytes().await.context("direct answer")?;
                anyhow::ensure!(status.is_success(), "the backend answered {status}");
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context("direct client task")??;
    }
    Ok(DirectRun { requests: n, elapsed: started.elapsed() })
}
