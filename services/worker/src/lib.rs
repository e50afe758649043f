//! The Nightshift worker: pulls chunks from the queue (JetStream, or in-process when standalone), runs their requests on a model server,
//! publishes one result per request.
//!
//! # Layout
//! - [`backend`]: the model server clients (Ollama's native API, any OpenAI-compatible server),
//!   with retries, timeouts and adaptive concurrency.
//! - [`chunk`]: one chunk from delivery to acknowledgement, exactly once per request.
//! - [`control`]: whether a batch was cancelled or expired.
//! - [`gpu`]: VRAM samples through NVML, else Ollama's `/api/ps`, for the metrics service.
//! - [`config`]: flags and environment.
//!
//! Every worker, on this host or another, shares one durable consumer: adding a worker adds
//! capacity with no other change.

pub mod backend;
pub mod chunk;
pub mod config;
pub mod control;
pub mod gpu;
pub mod outbox;

use anyhow::Context;
use backend::{Backend, Execution};
use nightshift_shared::measurements::SampleTrigger;
use nightshift_shared::queue::{Consumer, ConsumerSpec, Delivery, Outgoing, Queue};
use nightshift_shared::subjects;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use chunk::ChunkOutcome;
pub use config::Config;

/// What one [`Pump::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A chunk finished (acknowledged, or terminated as poison).
    Processed(ChunkOutcome),
    /// No chunk was waiting and none is in flight.
    Idle,
}

/// A connected worker: its backend, its queue, what it has seen.
pub struct Worker {
    pub id: String,
    pub backend: Backend,
    pub gpu: std::sync::Arc<gpu::GpuSampler>,
    queue: Arc<dyn Queue>,
    control: control::ControlCache,
    consumer: Arc<dyn Consumer>,
    ack_wait: Duration,
    reload_threshold: Duration,
    outbox_limits: outbox::Limits,
    /// Models this worker has seen loaded (warm-up or first use), and since when: a load paid by
    /// a request that started later is a reload.
    warm_models: Mutex<HashMap<String, Instant>>,
}

impl Worker {
    /// Connects to NATS JetStream (`NATS_URL`): the distributed deployment.
    pub async fn connect(config: &Config) -> anyhow::Result<Self> {
        let queue = config.nats.connect().await?;
        Self::new(config, Arc::new(queue)).await
    }

    /// A worker on `queue`, whichever kind it is.
    pub async fn new(config: &Config, queue: Arc<dyn Queue>) -> anyhow::Result<Self> {
        let backend = Backend::new(config.backend_config()?)?;
        let ack_wait = Duration::from_secs(config.ack_wait_secs.max(5));
        let consumer = queue
            .consumer(ConsumerSpec {
                stream: subjects::CHUNKS_STREAM,
                durable: subjects::WORKERS_CONSUMER,
                description: "Nightshift workers share this consumer",
                filter: None,
                ack_wait,
                max_ack_pending: 100_000,
            })
            .await
            .context("creating the workers' consumer")?;
        let id = config.worker_id();
        let ollama =
            (config.backend == backend::BackendKind::Ollama).then(|| config.ollama_url.clone());
        let gpu = gpu::GpuSampler::new(&id, gpu::host_name(), ollama, reqwest::Client::new());
        Ok(Self {
            id,
            gpu: std::sync::Arc::new(gpu),
            backend,
            control: control::ControlCache::new(queue.clone()),
            outbox_limits: outbox::Limits::of(&*queue, config.max_result_bytes),
            queue,
            consumer,
            ack_wait,
            reload_threshold: Duration::from_millis(config.reload_threshold_ms),
            warm_models: Mutex::default(),
        })
    }

    /// Loads each model so the first batch does not pay for it. A model that fails to load is
    /// logged, not fatal: the server may gain it later, and requests will say what went wrong.
    pub async fn warm_up(&self, models: &[String]) {
        if self.backend.unloads_after_each_request() && models.iter().any(|m| !m.is_empty()) {
            // A warm model would be unloaded again at once; every request will load it.
            tracing::warn!(
                "OLLAMA_KEEP_ALIVE is 0: Ollama unloads the model after every request, so it is \
                 not warmed up and every request pays a load (counted as a reload); use -1 to \
                 keep it loaded"
            );
            return;
        }
        for model in models.iter().filter(|m| !m.is_empty()) {
            match self.backend.warm_up(model).await {
                Ok(w) => {
                    tracing::info!(model, elapsed_ms = w.elapsed.as_millis() as u64, "model warm");
                    if let Ok(mut warm) = self.warm_models.lock() {
                        warm.insert(model.clone(), Instant::now());
                    }
                }
                Err(e) => tracing::warn!(model, error = %e, "warm-up failed"),
            }
        }
    }

    /// Records a model reload: a load paid by a request that started after the model was last
    /// known loaded. Requests that queued behind the same load (the first one, or a reload
    /// already recorded) started before that instant and do not count again.
    async fn note_load(&self, execution: &Execution, batch_id: &str) {
        let Some(model) = execution.model.as_deref() else { return };
        let reload = chunk::reload_of(execution, self.reload_threshold, &self.id, batch_id);
        let started = Instant::now().checked_sub(execution.latency);
        let counts = match self.warm_models.lock() {
            Ok(mut warm) => match warm.get_mut(model) {
                Some(since) if reload.is_some() && started.is_some_and(|s| s > *since) => {
                    *since = Instant::now();
                    true
                }
                Some(_) => false,
                None => {
                    warm.insert(model.to_owned(), Instant::now());
                    false
                }
            },
            Err(_) => false,
        };
        if let Some(reload) = reload.filter(|_| counts) {
            tracing::warn!(model, load_ms = reload.load_ms, "model reloaded");
            self.publish_telemetry(subjects::TELEMETRY_RELOADS, &reload).await;
        }
    }

    /// Samples VRAM at a chunk's start or end, tagged with its batch.
    async fn sample_gpu(&self, trigger: SampleTrigger, batch_id: &str) {
        if let Some(sample) = self.gpu.sample(trigger, Some(batch_id)).await {
            self.publish_telemetry(subjects::TELEMETRY_GPU, &sample).await;
        }
    }

    /// Best effort: telemetry must never hold up or fail the work it describes.
    async fn publish_telemetry<T: Serialize>(&self, subject: &'static str, value: &T) {
        let Ok(payload) = serde_json::to_vec(value) else { return };
        if let Err(e) = self.queue.publish(Outgoing::new(subject, payload)).await {
            tracing::warn!(subject, error = %e, "telemetry not published");
        }
    }
}

/// Keeps up to `prefetch` chunks in flight on one worker.
pub struct Pump {
    worker: std::sync::Arc<Worker>,
    prefetch: usize,
    in_flight: JoinSet<anyhow::Result<ChunkOutcome>>,
}

impl Pump {
    pub fn new(worker: std::sync::Arc<Worker>, prefetch: usize) -> Self {
        Self { worker, prefetch: prefetch.max(1), in_flight: JoinSet::new() }
    }

    /// Takes chunks until `prefetch` are in flight, then waits for one to finish.
    /// Waits up to `idle_wait` for work when there is none.
    pub async fn step(&mut self, idle_wait: Duration) -> anyhow::Result<Outcome> {
        let free = self.prefetch - self.in_flight.len();
        if free > 0 {
            let wait = if self.in_flight.is_empty() { idle_wait } else { Duration::ZERO };
            for message in self.fetch(free, wait).await? {
                let worker = self.worker.clone();
                self.in_flight.spawn(async move { chunk::process(&worker, message).await });
            }
        }
        match self.in_flight.join_next().await {
            None => Ok(Outcome::Idle),
            Some(joined) => Ok(Outcome::Processed(joined.context("chunk task panicked")??)),
        }
    }

    async fn fetch(&self, n: usize, wait: Duration) -> anyhow::Result<Vec<Delivery>> {
        self.worker.consumer.fetch(n, wait).await.context("fetching chunks")
    }

    /// Stops taking chunks and lets the ones in flight finish (unfinished ones are redelivered).
    pub async fn drain(&mut self, limit: Duration) {
        let drained = tokio::time::timeout(limit, async {
            while let Some(joined) = self.in_flight.join_next().await {
                log_outcome(joined.map_err(anyhow::Error::from).and_then(|r| r));
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!("chunks still running at shutdown; JetStream will redeliver them");
            self.in_flight.abort_all();
        }
    }
}

fn log_outcome(result: anyhow::Result<ChunkOutcome>) {
    match result {
        Ok(ChunkOutcome::Done { ran, skipped }) => tracing::debug!(ran, skipped, "chunk done"),
        Ok(ChunkOutcome::Poison) => {}
        Err(e) => tracing::warn!(error = ?e, "chunk failed; it will be redelivered"),
    }
}

/// Connects to NATS, warms the models up, and works until `shutdown`.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let worker = Worker::connect(&config).await?;
    work(config, Arc::new(worker), shutdown).await
}

/// Warms the models up and works until `shutdown`.
pub async fn work(
    config: Config,
    worker: Arc<Worker>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    tracing::info!(
        worker_id = %worker.id,
        backend = %config.backend,
        url = %config.backend_url()?,
        concurrency = config.concurrency,
        "worker started"
    );
    worker.warm_up(&config.models).await;
    let sampler = {
        let (worker, token) = (worker.clone(), shutdown.clone());
        let every = Duration::from_secs_f64(config.gpu_sample_secs.max(0.05));
        tokio::spawn(async move {
            let publisher = worker.clone();
            worker
                .gpu
                .clone()
                .run_periodic(
                    every,
                    move |sample| {
                        let publisher = publisher.clone();
                        async move {
                            publisher.publish_telemetry(subjects::TELEMETRY_GPU, &sample).await;
                        }
                    },
                    token,
                )
                .await;
        })
    };
    let mut pump = Pump::new(worker, config.prefetch_chunks);
    loop {
        let step = tokio::select! {
            () = shutdown.cancelled() => break,
            step = pump.step(Duration::from_secs(1)) => step,
        };
        match step {
            Ok(Outcome::Processed(outcome)) => log_outcome(Ok(outcome)),
            Ok(Outcome::Idle) => {}
            Err(e) => {
                log_outcome(Err(e));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    pump.drain(Duration::from_secs(30)).await;
    sampler.await.context("GPU sampler task")?;
    Ok(())
}
