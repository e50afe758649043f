//! The few HTTP calls the bench makes: the gateway's Files and Batches API, the simulator's
//! `/sim/state`, and the metrics service's multi-batch report.

use anyhow::Context;
use nightshift_shared::openai::{Batch, FileObject};
use reqwest::multipart;
use serde::Deserialize;
use std::path::Path;

/// A gateway client.
#[derive(Debug, Clone)]
pub struct Gateway {
    http: reqwest::Client,
    base: String,
}

impl Gateway {
    pub fn new(http: reqwest::Client, base: &str) -> Self {
        Self { http, base: base.to_owned() }
    }

    /// Uploads `path` with purpose `batch`, streamed from disk.
    pub async fn upload(&self, path: &Path) -> anyhow::Result<FileObject> {
        let file = tokio::fs::File::open(path)
            .await
            .with_context(|| format!("opening {}", path.display()))?;
        let length = file.metadata().await.context("reading the input's size")?.len();
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
        let part = multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), length)
            .file_name("bench.jsonl");
        let form = multipart::Form::new().text("purpose", "batch").part("file", part);
        let response = self.http.post(format!("{}/v1/files", self.base)).multipart(form).send();
        decode(response.await.context("uploading")?).await
    }

    pub async fn create_batch(&self, input_file_id: &str) -> anyhow::Result<Batch> {
        let body = serde_json::json!({
            "input_file_id": input_file_id,
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        });
        let response = self.http.post(format!("{}/v1/batches", self.base)).json(&body).send();
        decode(response.await.context("creating a batch")?).await
    }

    pub async fn batch(&self, id: &str) -> anyhow::Result<Batch> {
        let response = self.http.get(format!("{}/v1/batches/{id}", self.base)).send();
        decode(response.await.context("reading a batch")?).await
    }

    pub async fn cancel(&self, id: &str) -> anyhow::Result<Batch> {
        let response = self.http.post(format!("{}/v1/batches/{id}/cancel", self.base)).send();
        decode(response.await.context("cancelling a batch")?).await
    }
}

/// The parts of `/sim/state` the bench reads.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct SimState {
    /// Requests holding a slot now.
    pub in_flight: u64,
    pub counters: SimCounters,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct SimCounters {
    /// Requests answered successfully since the simulator started.
    pub completed: u64,
}

pub async fn sim_state(http: &reqwest::Client, sim_url: &str) -> anyhow::Result<SimState> {
    let response = http.get(format!("{sim_url}/sim/state")).send();
    decode(response.await.context("reading /sim/state")?).await
}

/// The throughput variance (%) the metrics service's multi-batch report computes for `ids`.
pub async fn report_variance_pct(
    http: &reqwest::Client,
    metrics_url: &str,
    ids: &[String],
) -> anyhow::Result<Option<f64>> {
    let query: Vec<(&str, &str)> = ids.iter().map(|id| ("batch_id", id.as_str())).collect();
    let response =
        http.get(format!("{metrics_url}/v1/reports/multi-batch")).query(&query).send().await;
    let report: serde_json::Value = decode(response.context("reading the report")?).await?;
    Ok(report["throughput"]["variance_pct"].as_f64())
}

async fn decode<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> anyhow::Result<T> {
    let status = response.status();
    let url = response.url().clone();
    let bytes = response.bytes().await.with_context(|| format!("reading {url}"))?;
    anyhow::ensure!(
        status.is_success(),
        "{url} answered {status}: {}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(500)])
    );
    serde_json::from_slice(&bytes).with_context(|| format!("decoding the answer of {url}"))
}
