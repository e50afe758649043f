//! `spawn_app`, the telemetry a batch run produces, and the requests the tests make.

use async_nats::jetstream;
use clap::Parser;
use nightshift_metrics::{AppState, Config, store::Store};
use nightshift_shared::db::Db;
use nightshift_shared::measurements::{
    BatchEvent, ChunkReport, GpuReading, GpuSample, ModelReload, OllamaTimingMs, RequestReport,
    SampleTrigger, VramSource,
};
use nightshift_shared::messages::TokenUsage;
use nightshift_shared::openai::BatchStatus;
use nightshift_shared::subjects;
use nightshift_testkit::NatsServer;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Bytes of one reported GB.
pub const GIB: f64 = 1_073_741_824.0;

pub struct TestApp {
    pub url: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub js: jetstream::Context,
    pub key: Option<String>,
    published: AtomicU64,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    _nats: NatsServer,
}

pub async fn spawn_app(pool: PgPool) -> TestApp {
    spawn_app_with(pool, &[]).await
}

/// Starts the service with extra command-line `args` on its own NATS server.
pub async fn spawn_app_with(pool: PgPool, args: &[&str]) -> TestApp {
    let nats = NatsServer::start();
    let url = nats.url();
    let mut argv = vec!["nightshift-metrics", "--nats-url", &url, "--addr", "127.0.0.1:0"];
    argv.extend_from_slice(args);
    let config = Config::try_parse_from(argv).unwrap();
    let state = AppState::new(&config, Store::from_db(Db::Postgres(pool))).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(nightshift_metrics::serve(listener, state.clone(), shutdown.clone()));
    let js = jetstream::new(async_nats::connect(&url).await.unwrap());
    TestApp {
        url: format!("http://{addr}"),
        client: reqwest::Client::new(),
        state,
        js,
        key: None,
        published: AtomicU64::new(0),
        shutdown,
        handle: Some(handle),
        _nats: nats,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
    }
}

impl TestApp {
    pub fn with_key(mut self, key: &str) -> Self {
        self.key = Some(key.to_owned());
        self
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        let builder = self.client.get(format!("{}{path}", self.url));
        match &self.key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    /// GETs `path` and returns the JSON body, asserting a 200.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    pub async fn batch_metrics(&self, id: &str) -> Value {
        self.get_json(&format!("/v1/batches/{id}/metrics")).await
    }

    /// Publishes one telemetry message, as a worker or the gateway would.
    pub async fn publish<T: Serialize>(&self, subject: &'static str, value: &T) {
        let payload = serde_json::to_vec(value).unwrap();
        self.js.publish(subject, payload.into()).await.unwrap().await.unwrap();
        self.published.fetch_add(1, Ordering::SeqCst);
    }

    /// Waits until the service has consumed everything published so far.
    pub async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let want = self.published.load(Ordering::SeqCst);
        while self.state.exporter.consumed_total() < want {
            assert!(Instant::now() < deadline, "telemetry not consumed after 15 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn event(
        &self,
        id: &str,
        owner: &str,
        status: BatchStatus,
        at: i64,
        counts: [u64; 3],
    ) {
        let event = BatchEvent {
            batch_id: id.into(),
            owner: owner.into(),
            status,
            at,
            total: counts[0],
            completed: counts[1],
            failed: counts[2],
            model: Some("llama3.2:1b".into()),
            metadata: None,
        };
        self.publish(subjects::TELEMETRY_BATCHES, &event).await;
    }

    pub async fn gpu(&self, at: i64, gib: f64, trigger: SampleTrigger, batch_id: Option<&str>) {
        self.publish(
            subjects::TELEMETRY_GPU,
            &gpu_sample("w1", "h1", "GPU-1", at, gib, trigger, batch_id),
        )
        .await;
    }

    /// Publishes everything one batch run produces: lifecycle events, one chunk report, GPU
    /// samples around and during it, reloads.
    pub async fn run(&self, plan: &Plan) {
        let end = plan.end();
        let failed = plan.failed.len() as u64;
        let total = u64::from(plan.requests);
        let id = plan.id.as_str();
        self.event(id, &plan.owner, BatchStatus::Validating, plan.start - 1000, [0, 0, 0]).await;
        self.event(id, &plan.owner, BatchStatus::InProgress, plan.start, [total, 0, 0]).await;
        self.gpu(plan.start - 10_000, plan.vram_before, SampleTrigger::Periodic, None).await;
        self.gpu(plan.start + 500, plan.vram_before, SampleTrigger::ChunkStart, Some(id)).await;
        self.gpu((plan.start + end) / 2, plan.vram_peak, SampleTrigger::Periodic, None).await;
        self.gpu(end - 500, plan.vram_after, SampleTrigger::ChunkEnd, Some(id)).await;
        let requests = (0..plan.requests).map(|line| plan.request(line)).collect();
        self.publish(subjects::TELEMETRY_CHUNKS, &chunk(id, 0, 1, end - 500, requests)).await;
        for i in 0..plan.reloads {
            let reload = ModelReload {
                worker_id: "w1".into(),
                model: "llama3.2:1b".into(),
                at: plan.start + 1000 + i64::from(i),
                load_ms: 30_000.0,
                batch_id: Some(id.into()),
            };
            self.publish(subjects::TELEMETRY_RELOADS, &reload).await;
        }
        self.event(id, &plan.owner, BatchStatus::Finalizing, end, [total, total - failed, failed])
            .await;
        let status = BatchStatus::Completed;
        self.event(id, &plan.owner, status, end, [total, total - failed, failed]).await;
        self.gpu(end + 5_000, plan.vram_after, SampleTrigger::Periodic, None).await;
    }
}

/// One batch run, as a worker with one GPU would report it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub id: String,
    pub owner: String,
    pub start: i64,
    pub seconds: f64,
    pub requests: u32,
    /// `(line, error code)` of the failed requests.
    pub failed: Vec<(u32, &'static str)>,
    /// In GB of 2^30 bytes.
    pub vram_before: f64,
    pub vram_after: f64,
    pub vram_peak: f64,
    pub reloads: u32,
}

impl Plan {
    /// A clean batch of `requests` requests at `rps`, starting `start_offset_s` after the
    /// test's base time, VRAM steady at 10.35 GB.
    pub fn new(id: &str, start_offset_s: i64, requests: u32, rps: f64) -> Self {
        Self {
            id: id.into(),
            owner: String::new(),
            start: base_time() + start_offset_s * 1000,
            seconds: f64::from(requests) / rps,
            requests,
            failed: vec![],
            vram_before: 10.35,
            vram_after: 10.35,
            vram_peak: 10.9,
            reloads: 0,
        }
    }

    pub fn end(&self) -> i64 {
        self.start + (self.seconds * 1000.0).round() as i64
    }

    /// Line `n`: latency 100 × (n + 1) ms, 10 prompt and 20 completion tokens.
    fn request(&self, line: u32) -> RequestReport {
        let error =
            self.failed.iter().find(|(l, _)| *l == line).map(|(_, code)| (*code).to_owned());
        request(line, 100.0 * f64::from(line + 1), error, Some(usage(10, 20, None)))
    }
}

/// Two hours ago: recent enough that no rollup touches the samples, in the past like real runs.
pub fn base_time() -> i64 {
    nightshift_metrics::store::now_ms() - 2 * 3600 * 1000
}

pub fn usage(prompt: u64, completion: u64, cached: Option<u64>) -> TokenUsage {
    TokenUsage {
        prompt_tokens: Some(prompt),
        completion_tokens: Some(completion),
        cached_tokens: cached,
    }
}

pub fn request(
    line: u32,
    latency_ms: f64,
    error: Option<String>,
    usage: Option<TokenUsage>,
) -> RequestReport {
    RequestReport {
        line,
        model: Some("llama3.2:1b".into()),
        queue_wait_ms: 5.0,
        latency_ms,
        attempts: 1,
        error,
        usage,
        ollama: Some(OllamaTimingMs {
            load_ms: 1.0,
            prompt_eval_ms: 2.0,
            eval_ms: 3.0,
            total_ms: 6.0,
        }),
    }
}

pub fn chunk(
    batch_id: &str,
    chunk_index: u32,
    delivery: u64,
    finished_at: i64,
    requests: Vec<RequestReport>,
) -> ChunkReport {
    ChunkReport {
        batch_id: batch_id.into(),
        chunk_index,
        worker_id: "w1".into(),
        delivery,
        received_at: finished_at - 1000,
        finished_at,
        requests,
    }
}

pub fn gpu_sample(
    worker: &str,
    host: &str,
    uuid: &str,
    at: i64,
    gib: f64,
    trigger: SampleTrigger,
    batch_id: Option<&str>,
) -> GpuSample {
    GpuSample {
        worker_id: worker.into(),
        host: host.into(),
        at,
        source: VramSource::Nvml,
        trigger,
        batch_id: batch_id.map(str::to_owned),
        gpus: vec![GpuReading {
            uuid: uuid.into(),
            name: "NVIDIA H100 80GB HBM3".into(),
            memory_used_bytes: bytes(gib),
            memory_total_bytes: Some(85_520_809_984),
            memory_free_bytes: Some(85_520_809_984 - bytes(gib)),
            utilization_pct: Some(87),
            temperature_c: Some(61),
        }],
    }
}

pub fn bytes(gib: f64) -> u64 {
    (gib * GIB).round() as u64
}

/// Asserts `value` is a number within 1e-6 of `want`.
#[track_caller]
pub fn assert_close(value: &Value, want: f64) {
    let got = value.as_f64().unwrap_or_else(|| panic!("{value} is not a number"));
    assert!((got - want).abs() < 1e-6, "got {got}, want {want}");
}

/// Asserts an error response: its status, and the OpenAI error object's code; returns the message.
pub async fn assert_error(response: reqwest::Response, status: u16, code: Option<&str>) -> String {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    assert!(error["type"].is_string(), "{body}");
    assert_eq!(error["code"].as_str(), code, "{body}");
    error["message"].as_str().unwrap().to_owned()
}
