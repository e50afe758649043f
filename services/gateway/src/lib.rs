//! The Nightshift gateway: OpenAI-compatible Files and Batches API in front of the queue
//! (JetStream, or in-process when standalone) and the database (Postgres or SQLite).
//!
//! # Layout
//! - [`routes`]: the HTTP API (`/v1/files`, `/v1/batches`, health and metrics).
//! - [`lifecycle`]: the background life of a batch, a file per step (lease, validate, publish,
//!   finalize, sweep, control), resuming after a crash from what the database recorded.
//! - [`collector`]: records workers' results and hands a batch that has them all to
//!   [`lifecycle::finalize`], which writes the output and error files and ends the batch.
//! - [`events`]: batch lifecycle events for the metrics service.
//! - [`validate`] and [`lines`]: the streaming line checks behind validation.
//!
//! One token stops everything: it is given to [`AppState::new`], and [`serve`] stops the HTTP
//! API, the collector, the sweeper and every batch task when it fires.
//! - [`store`]: persistence, on Postgres or SQLite.
//! - [`metrics`]: Prometheus counters. API keys and the OpenAI error shape come from
//!   `nightshift_shared::http`.

pub mod collector;
pub mod events;
pub mod lifecycle;
pub mod lines;
pub mod metrics;
#[cfg(test)]
mod properties;
pub mod routes;
pub mod store;
pub mod validate;

use anyhow::Context;
use clap::{Args, Parser};
use nightshift_shared::config::{AuthArgs, DatabaseArgs, NatsArgs};
use nightshift_shared::queue::Queue;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Gateway configuration, from flags and environment.
#[derive(Debug, Clone, Parser)]
#[command(name = "nightshift-gateway", version, about)]
pub struct Config {
    /// Address the HTTP API listens on.
    #[arg(long, env = "GATEWAY_ADDR", default_value = "0.0.0.0:4080")]
    pub addr: SocketAddr,

    #[command(flatten)]
    pub nats: NatsArgs,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub auth: AuthArgs,

    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Bounds on what clients may send, and how batches are cut into chunks.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Largest file accepted by `POST /v1/files`, in bytes.
    #[arg(long, env = "NIGHTSHIFT_MAX_FILE_BYTES", default_value_t = 512 * 1024 * 1024)]
    pub max_file_bytes: u64,

    /// Longest request line in a batch input file, in bytes.
    #[arg(long, env = "NIGHTSHIFT_MAX_LINE_BYTES", default_value_t = 480 * 1024)]
    pub max_line_bytes: usize,

    /// Most requests one batch may hold.
    #[arg(long, env = "NIGHTSHIFT_MAX_REQUESTS_PER_BATCH", default_value_t = 200_000)]
    pub max_requests: u64,

    /// Requests per chunk handed to a worker.
    #[arg(long, env = "NIGHTSHIFT_CHUNK_SIZE", default_value_t = 100)]
    pub chunk_size: u32,

    /// Most bytes of requests per chunk (a chunk is one NATS message, bounded by its max payload).
    #[arg(long, env = "NIGHTSHIFT_CHUNK_MAX_BYTES", default_value_t = 768 * 1024)]
    pub chunk_max_bytes: usize,

    /// Seconds a cancelled or expired batch waits for workers to finish its started chunks
    /// before it ends anyway (its unstarted requests end `batch_cancelled` or `batch_expired`).
    #[arg(long, env = "NIGHTSHIFT_CANCEL_GRACE_SECS", default_value_t = 600)]
    pub cancel_grace_secs: u64,
}

impl LimitArgs {
    pub fn validation(&self) -> validate::Limits {
        validate::Limits {
            max_line_bytes: self.max_line_bytes,
            max_requests: self.max_requests,
            chunk_size: self.chunk_size.max(1),
            chunk_max_bytes: self.chunk_max_bytes,
        }
    }
}

/// Everything a handler or background task needs.
#[derive(Clone)]
pub struct AppState {
    pub store: store::Store,
    pub queue: Arc<dyn Queue>,
    pub keys: nightshift_shared::auth::Keys,
    pub limits: Arc<LimitArgs>,
    pub metrics: metrics::Metrics,
    pub lifecycle: lifecycle::Lifecycle,
}

impl AppState {
    /// Connects to NATS and makes sure the streams exist; the store is already connected.
    /// Everything the gateway runs stops when `shutdown` fires.
    pub async fn new(
        config: &Config,
        store: store::Store,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let queue = config.nats.connect().await?;
        Self::with_queue(config, store, Arc::new(queue), shutdown)
    }

    /// State on an open store and queue, whichever kinds they are.
    pub fn with_queue(
        config: &Config,
        store: store::Store,
        queue: Arc<dyn Queue>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let max_payload = queue.max_payload();
        let largest_chunk = config.limits.chunk_max_bytes.max(config.limits.max_line_bytes * 2);
        anyhow::ensure!(
            largest_chunk + 4096 <= max_payload,
            "NIGHTSHIFT_CHUNK_MAX_BYTES ({}) and twice NIGHTSHIFT_MAX_LINE_BYTES ({}) must fit under \
             the queue's largest message ({max_payload} bytes; NATS: max_payload): lower them or \
             raise max_payload",
            config.limits.chunk_max_bytes,
            config.limits.max_line_bytes,
        );
        Ok(Self {
            store,
            queue,
            keys: nightshift_shared::auth::Keys::new(&config.auth.api_keys),
            limits: Arc::new(config.limits.clone()),
            metrics: metrics::Metrics::new()?,
            lifecycle: lifecycle::Lifecycle::new(shutdown),
        })
    }
}

/// The whole HTTP API.
pub fn router(state: AppState) -> axum::Router {
    routes::router(state)
}

/// Serves the API on `listener`, collects results and sweeps until the state's shutdown token
/// fires, then waits for every background task to stop.
pub async fn serve(listener: TcpListener, state: AppState) -> anyhow::Result<()> {
    let shutdown = state.lifecycle.shutdown().clone();
    state.lifecycle.spawn(lifecycle::sweep::run(state.clone()));
    state.lifecycle.spawn(collector::run(state.clone()));
    let served = axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("serving HTTP");
    // Whatever ended the serving (the token, or an error), nothing of this gateway outlives it.
    state.lifecycle.stop().await;
    served
}

/// Connects everything, binds `config.addr` and serves until `shutdown`.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let store = store::Store::connect(&config.database).await?;
    let state = AppState::new(&config, store, shutdown).await?;
    let listener = TcpListener::bind(config.addr).await.with_context(|| {
        format!("cannot listen on {}: is it in use? Set GATEWAY_ADDR", config.addr)
    })?;
    tracing::info!(addr = %config.addr, open = state.keys.is_open(), "gateway listening");
    serve(listener, state).await
}
