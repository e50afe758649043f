//! `Run`: the stack every verdict test uses, its batches, and the JSON the metrics service
//! answers about them once telemetry has caught up.

use async_nats::jetstream::{self, consumer::AckPolicy, consumer::pull};
use futures::StreamExt;
use nightshift_shared::measurements::ModelReload;
use nightshift_shared::openai::Batch;
use nightshift_shared::subjects;
use nightshift_testkit::stack::{Mode, Stack, chat_file};
use ollama_sim::SimConfig;
use serde_json::Value;
use sqlx::PgPool;
use std::time::{Duration, Instant};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The model `chat_file` asks for and the workers warm up at start.
pub const MODEL: &str = "llama3.2:1b";

/// Requests per chunk: enough chunks that both workers (2 chunks each) fill at once.
const CHUNK_SIZE: &str = "25";

/// A simulator whose throughput is set by its slots, not by this machine's CPUs: 4 slots of
/// 250 ms serve 16 requests/s, so 120 requests take ~7.5 s. The gateway's collector notices a
/// batch's last result up to 0.5 s late (it pulls results in 0.5 s rounds), so a batch must run
/// well over 5 s for that jitter to stay clearly under the plan's 10% variance; and the longer
/// each request, the less a busy CPU delaying its handling shows in the throughput.
pub fn steady_sim() -> SimConfig {
    SimConfig { parallel: 4, latency_ms: Some(250), ..SimConfig::zero_latency() }
}

/// Requests per batch on [`steady_sim`].
pub const STEADY_REQUESTS: usize = 120;

/// A fast simulator for the tests that do not judge throughput.
pub fn quick_sim() -> SimConfig {
    SimConfig { parallel: 8, latency_ms: Some(5), ..SimConfig::zero_latency() }
}

/// What `/api/ps` reports for one loaded model of `sim` before any leak, in GB.
pub fn model_gb(sim: &SimConfig) -> f64 {
    (sim.vram_model_mb + sim.vram_per_slot_mb * sim.parallel as u64) as f64 / 1024.0
}

/// The machine, as the tests of this binary share it. A run whose throughput is judged has it
/// to itself: another test's stack starting up or its CPU-bound batches can stall the collector
/// or workers for a second or more, which reads as a throughput swing.
static MACHINE: RwLock<()> = RwLock::const_new(());

/// How a run holds [`MACHINE`]: the guard is only held, until the run is dropped.
#[allow(dead_code)]
enum Machine {
    Shared(RwLockReadGuard<'static, ()>),
    Alone(RwLockWriteGuard<'static, ()>),
}

pub struct Run {
    pub stack: Stack,
    /// The metrics service's base URL.
    pub metrics: String,
    http: reqwest::Client,
    _machine: Machine,
}

/// A batch the gateway ended, and its metrics once every telemetry message about it is in.
pub struct Finished {
    pub batch: Batch,
    pub metrics: Value,
}

impl Run {
    /// Gateway, metrics service and two workers (`--concurrency 4`, the model warmed at
    /// start, plus `worker_args`), ready once a GPU reading has reached the metrics service.
    /// Its batches' throughput is not judged: it may share the machine with other such runs.
    pub async fn start(pool: PgPool, sim: SimConfig, worker_args: &[&str]) -> Run {
        let machine = Machine::Shared(MACHINE.read().await);
        Self::start_on(machine, pool, sim, worker_args).await
    }

    /// Like [`Run::start`], for a run whose throughput is judged: it waits to have the
    /// machine to itself.
    pub async fn start_timed(pool: PgPool, sim: SimConfig, worker_args: &[&str]) -> Run {
        let machine = Machine::Alone(MACHINE.write().await);
        Self::start_on(machine, pool, sim, worker_args).await
    }

    async fn start_on(machine: Machine, pool: PgPool, sim: SimConfig, worker_args: &[&str]) -> Run {
        let mut stack =
            Stack::start(Mode::Distributed(pool), sim, &["--chunk-size", CHUNK_SIZE]).await;
        let metrics = stack.start_metrics().await;
        let mut args = vec!["--concurrency", "4", "--models", MODEL];
        args.extend_from_slice(worker_args);
        stack.spawn_worker(&args);
        stack.spawn_worker(&args);
        let run = Run { stack, metrics, http: reqwest::Client::new(), _machine: machine };
        let deadline = Instant::now() + Duration::from_secs(20);
        while run.get_json("/v1/gpus").await["data"].as_array().is_none_or(Vec::is_empty) {
            assert!(Instant::now() < deadline, "no GPU reading reached the metrics service");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Both workers warm up before they sample: give the second one time to catch up.
        tokio::time::sleep(Duration::from_millis(300)).await;
        run
    }

    /// GETs `path` on the metrics service, asserting a 200.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.http.get(format!("{}{path}", self.metrics)).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    /// Runs one batch of `requests` to its end, then waits for its metrics to be complete.
    pub async fn batch(&self, requests: usize) -> Finished {
        let submitted = self.stack.submit(chat_file(requests), "/v1/chat/completions").await;
        let batch = self.stack.wait_final(&submitted.id, Duration::from_secs(60)).await;
        let metrics = self.settled_metrics(&batch).await;
        Finished { batch, metrics }
    }

    /// Runs `n` batches of `requests` one after another.
    pub async fn batches(&self, n: usize, requests: usize) -> Vec<Finished> {
        let mut done = Vec::with_capacity(n);
        for _ in 0..n {
            done.push(self.batch(requests).await);
        }
        done
    }

    /// Telemetry is asynchronous: polls the batch's metrics until they show its final status,
    /// every request the workers reported, and a VRAM reading taken after its end.
    async fn settled_metrics(&self, batch: &Batch) -> Value {
        let path = format!("/v1/batches/{}/metrics", batch.id);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let response = self.http.get(format!("{}{path}", self.metrics)).send().await.unwrap();
            if response.status() == 200 {
                let m: Value = response.json().await.unwrap();
                let ended = m["timing"]["ended_at"].as_i64();
                let gpus = m["vram"]["gpus"].as_array().cloned().unwrap_or_default();
                let settled = m["status"] == batch.status.as_str()
                    && m["requests"]["reported"] == m["requests"]["total"]
                    && !gpus.is_empty()
                    && gpus.iter().all(|g| g["after_at"].as_i64() >= ended);
                if settled {
                    return m;
                }
                assert!(Instant::now() < deadline, "metrics of {} never settled: {m}", batch.id);
            } else {
                assert!(Instant::now() < deadline, "no metrics for {}", batch.id);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The multi-batch report over `batches`, in their order, with the plan's thresholds.
    pub async fn report(&self, batches: &[Finished]) -> Value {
        let query: Vec<String> =
            batches.iter().map(|b| format!("batch_id={}", b.batch.id)).collect();
        self.get_json(&format!("/v1/reports/multi-batch?{}", query.join("&"))).await
    }

    /// Every model reload the workers published, read back from the telemetry stream.
    pub async fn published_reloads(&self) -> Vec<ModelReload> {
        let js = jetstream::new(async_nats::connect(self.stack.nats().url()).await.unwrap());
        let stream = js.get_stream(subjects::TELEMETRY_STREAM).await.unwrap();
        let consumer = stream
            .create_consumer(pull::Config {
                filter_subject: subjects::TELEMETRY_RELOADS.into(),
                ack_policy: AckPolicy::None,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut reloads = Vec::new();
        loop {
            let mut page = consumer.fetch().max_messages(500).messages().await.unwrap();
            let before = reloads.len();
            while let Some(message) = page.next().await {
                reloads.push(serde_json::from_slice(&message.unwrap().payload).unwrap());
            }
            if reloads.len() == before {
                return reloads;
            }
        }
    }

    /// Whether VRAM readings are the simulator's (`/api/ps`); on a host with NVML the workers
    /// read the real GPU, which the simulator's VRAM model does not touch.
    pub fn reads_sim_vram(report: &Value) -> bool {
        let simulated = report["vram"]["source"] == "ollama_ps";
        if !simulated {
            eprintln!(
                "VRAM source is {} (NVML?), not the simulator's /api/ps: skipping the checks of \
                 simulated VRAM figures",
                report["vram"]["source"]
            );
        }
        simulated
    }

    pub async fn shutdown(self) {
        self.stack.shutdown().await;
    }
}

/// A number of the JSON, failing with the whole value when it is missing.
pub fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Asserts `v` is within `tolerance` of `expected`.
pub fn assert_near(v: &Value, expected: f64, tolerance: f64, what: &str) {
    let got = num(v);
    assert!(
        (got - expected).abs() <= tolerance,
        "{what}: {got}, expected {expected} ± {tolerance}"
    );
}

/// A criterion's verdict status (`pass`, `fail`, `unknown`) in a report.
pub fn status<'a>(report: &'a Value, criterion: &str) -> &'a str {
    report[criterion]["verdict"]["status"]
        .as_str()
        .unwrap_or_else(|| panic!("{criterion}: {report}"))
}

/// A failing criterion's reason, asserting it is also listed in `failures`.
pub fn failure(report: &Value, criterion: &str) -> String {
    assert_eq!(status(report, criterion), "fail", "{criterion}: {}", report[criterion]);
    assert_eq!(report["pass"], false);
    let reason = report[criterion]["verdict"]["reason"].as_str().unwrap().to_owned();
    let failures = report["failures"].as_array().unwrap();
    assert!(failures.iter().any(|f| f == reason.as_str()), "{reason:?} not in {failures:?}");
    reason
}

/// Asserts the criterion passed, with no reason and nothing about it in `failures`.
pub fn assert_passes(report: &Value, criterion: &str) {
    assert_eq!(status(report, criterion), "pass", "{criterion}: {report}");
    assert!(report[criterion]["verdict"]["reason"].is_null(), "{}", report[criterion]);
}
