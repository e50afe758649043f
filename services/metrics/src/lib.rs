//! The Nightshift metrics service: turns worker and gateway telemetry into per-batch metrics and
//! multi-batch stability reports (VRAM leak, throughput variance, model reloads, success rate).
//!
//! # Layout
//! - [`consumer`]: the durable consumer of the telemetry stream; acks after the write.
//! - [`store`]: persistence in the service's own `metrics_*` tables (Postgres or SQLite), and the rollup of
//!   old GPU samples into per-minute aggregates.
//! - [`report`]: per-batch metrics and the multi-batch report, assembled from the store.
//! - [`stats`]: the pure statistics behind them (means, spread, trend).
//! - [`routes`]: the HTTP API (`/v1/batches/{id}/metrics`, `/v1/reports/multi-batch`,
//!   `/v1/gpus`, health and Prometheus metrics).
//! - [`exporter`]: Prometheus gauges. API keys and the OpenAI error shape come from
//!   `nightshift_shared::http`.
//!
//! Nothing here reads another service's tables: what the service knows came over telemetry.

pub mod consumer;
pub mod exporter;
pub mod report;
pub mod routes;
pub mod stats;
pub mod store;

use anyhow::Context;
use clap::{Args, Parser};
use nightshift_shared::config::{AuthArgs, DatabaseArgs, NatsArgs};
use nightshift_shared::queue::{Consumer, Queue};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Metrics service configuration, from flags and environment.
#[derive(Debug, Clone, Parser)]
#[command(name = "nightshift-metrics", version, about)]
pub struct Config {
    /// Address the HTTP API listens on.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:4081")]
    pub addr: SocketAddr,

    #[command(flatten)]
    pub nats: NatsArgs,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub auth: AuthArgs,

    #[command(flatten)]
    pub retention: RetentionArgs,
}

/// How long GPU samples stay raw, and how reports look for them around a batch.
#[derive(Debug, Clone, Args)]
pub struct RetentionArgs {
    /// Hours raw GPU samples are kept before being rolled into per-minute aggregates.
    #[arg(long, env = "METRICS_RAW_SAMPLE_RETENTION_HOURS", default_value_t = 48)]
    pub raw_sample_retention_hours: u64,

    /// Days the samples taken at a batch's chunk start and end stay raw (at least the raw window).
    #[arg(long, env = "METRICS_BATCH_SAMPLE_RETENTION_DAYS", default_value_t = 30)]
    pub batch_sample_retention_days: u64,

    /// Seconds between two rollups of old samples.
    #[arg(long, env = "METRICS_ROLLUP_INTERVAL_SECS", default_value_t = 300)]
    pub rollup_interval_secs: u64,

    /// Seconds before a batch's start (after its end) in which its VRAM "before" ("after")
    /// reading is looked for.
    #[arg(long, env = "METRICS_VRAM_WINDOW_SECS", default_value_t = 300)]
    pub vram_window_secs: u64,
}

impl RetentionArgs {
    /// Raw samples older than this are rolled up.
    pub fn raw(&self) -> Duration {
        Duration::from_secs(self.raw_sample_retention_hours.max(1) * 3600)
    }

    /// Batch-tagged samples older than this are rolled up.
    pub fn batch_samples(&self) -> Duration {
        Duration::from_secs(self.batch_sample_retention_days * 86_400).max(self.raw())
    }

    pub fn vram_window_ms(&self) -> i64 {
        (self.vram_window_secs as i64).saturating_mul(1000)
    }
}

/// Everything a handler or background task needs.
#[derive(Clone)]
pub struct AppState {
    pub store: store::Store,
    pub queue: Arc<dyn Queue>,
    pub consumer: Arc<dyn Consumer>,
    pub keys: nightshift_shared::auth::Keys,
    pub exporter: exporter::Exporter,
    pub retention: RetentionArgs,
}

impl AppState {
    /// Connects to NATS, makes sure the streams and this service's consumer exist.
    pub async fn new(config: &Config, store: store::Store) -> anyhow::Result<Self> {
        let queue = config.nats.connect().await?;
        Self::with_queue(config, store, Arc::new(queue)).await
    }

    /// State on an open store and queue, whichever kinds they are.
    pub async fn with_queue(
        config: &Config,
        store: store::Store,
        queue: Arc<dyn Queue>,
    ) -> anyhow::Result<Self> {
        let consumer = consumer::create(&*queue).await?;
        Ok(Self {
            store,
            queue,
            consumer,
            keys: nightshift_shared::auth::Keys::new(&config.auth.api_keys),
            exporter: exporter::Exporter::new()?,
            retention: config.retention.clone(),
        })
    }
}

/// The whole HTTP API.
pub fn router(state: AppState) -> axum::Router {
    routes::router(state)
}

/// Consumes telemetry, rolls samples up and serves the API on `listener` until `shutdown` fires,
/// then waits for the background tasks to stop.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let tasks = TaskTracker::new();
    tasks.spawn(consumer::run(state.clone(), shutdown.clone()));
    tasks.spawn(store::rollup::run(state.store.clone(), state.retention.clone(), shutdown.clone()));
    tasks.close();
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await
        .context("serving HTTP");
    shutdown.cancel();
    tasks.wait().await;
    served
}

/// Connects everything, binds `config.addr` and serves until `shutdown`.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let store = store::Store::connect(&config.database).await?;
    let state = AppState::new(&config, store).await?;
    let listener = TcpListener::bind(config.addr).await.with_context(|| {
        format!("cannot listen on {}: is it in use? Set METRICS_ADDR", config.addr)
    })?;
    tracing::info!(addr = %config.addr, open = state.keys.is_open(), "metrics service listening");
    serve(listener, state, shutdown).await
}
