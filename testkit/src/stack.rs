//! The whole product under test: a test-owned NATS, an in-process gateway and metrics service
//! on the test's fresh database, the simulator in-process, and workers either in-process or as
//! real processes that a test may SIGKILL.

use crate::NatsServer;
use clap::Parser;
use nightshift_gateway::{AppState, Config as GatewayConfig, store::Store};
use nightshift_shared::openai::{Batch, BatchStatus, OutputLine};
use ollama_sim::{SimConfig, SimHandle};
use serde_json::json;
use sqlx::PgPool;
use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

pub struct Gateway {
    pub url: String,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// A worker the stack started.
pub enum WorkerHandle {
    Process(Child),
    InProcess { shutdown: CancellationToken, task: tokio::task::JoinHandle<anyhow::Result<()>> },
}

pub struct Metrics {
    pub url: String,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub struct Stack {
    pub nats: NatsServer,
    pub sim: SimHandle,
    pub gateway: Option<Gateway>,
    pub metrics: Option<Metrics>,
    pub workers: Vec<WorkerHandle>,
    /// Flags every worker gets, before the ones given to `spawn_worker`.
    pub worker_args: Vec<String>,
    pool: PgPool,
    gateway_args: Vec<String>,
    http: reqwest::Client,
}

impl Stack {
    /// A stack with no worker yet; `gateway_args` are extra gateway flags.
    pub async fn start(pool: PgPool, sim: SimConfig, gateway_args: &[&str]) -> Stack {
        let nats = NatsServer::start();
        let sim = ollama_sim::spawn(sim).await.unwrap();
        let mut stack = Stack {
            nats,
            sim,
            gateway: None,
            metrics: None,
            workers: Vec::new(),
            worker_args: Vec::new(),
            pool,
            gateway_args: gateway_args.iter().map(|s| s.to_string()).collect(),
            http: reqwest::Client::new(),
        };
        stack.start_gateway().await;
        stack
    }

    pub async fn start_gateway(&mut self) {
        let url = self.nats.url();
        let mut argv = vec!["gateway", "--nats-url", &url];
        argv.extend(self.gateway_args.iter().map(String::as_str));
        let config = GatewayConfig::try_parse_from(argv).unwrap();
        let shutdown = CancellationToken::new();
        let state = AppState::new(&config, Store::from_pool(self.pool.clone()), shutdown.clone())
            .await
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle =
            tokio::spawn(nightshift_gateway::serve(listener, state.clone(), shutdown.clone()));
        self.gateway = Some(Gateway { url, shutdown, handle });
    }

    /// Stops the gateway (its collector with it) as a restart would.
    pub async fn stop_gateway(&mut self) {
        if let Some(g) = self.gateway.take() {
            g.shutdown.cancel();
            g.handle.await.unwrap().unwrap();
        }
    }

    fn gateway(&self) -> &Gateway {
        self.gateway.as_ref().expect("gateway running")
    }

    /// Flags connecting a worker to this stack, with short retry and redelivery times.
    fn base_worker_args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "--nats-url",
            &self.nats.url(),
            "--ollama-url",
            &self.sim.url,
            "--worker-id",
            &format!("test-worker-{}", self.workers.len()),
            "--ack-wait-secs",
            "5",
            "--initial-backoff-ms",
            "20",
            "--max-backoff-ms",
            "200",
            "--gpu-sample-secs",
            "0.2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(self.worker_args.iter().cloned());
        args
    }

    /// Starts a worker in this process with extra flags (`--concurrency 4`, ...).
    pub fn spawn_worker(&mut self, extra: &[&str]) {
        let mut argv = vec!["nightshift-worker".to_owned()];
        argv.extend(self.base_worker_args());
        argv.extend(extra.iter().map(|s| s.to_string()));
        let config = nightshift_worker::Config::try_parse_from(argv).unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(nightshift_worker::run(config, shutdown.clone()));
        self.workers.push(WorkerHandle::InProcess { shutdown, task });
    }

    /// Starts a worker as a separate process of `binary` (so a test can SIGKILL it).
    pub fn spawn_worker_process(&mut self, binary: &str, extra: &[&str]) {
        let mut command = Command::new(binary);
        command
            .args(self.base_worker_args())
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true);
        self.workers.push(WorkerHandle::Process(command.spawn().expect("worker binary")));
    }

    /// SIGKILLs worker `i`, a process: no graceful shutdown, its chunks are left unacknowledged.
    pub async fn kill_worker(&mut self, i: usize) {
        match &mut self.workers[i] {
            WorkerHandle::Process(child) => child.kill().await.unwrap(),
            WorkerHandle::InProcess { .. } => panic!("only a worker process can be killed"),
        }
    }

    /// Starts the metrics service in this process, on the stack's database.
    pub async fn start_metrics(&mut self) -> String {
        let url = self.nats.url();
        let config = nightshift_metrics::Config::try_parse_from([
            "nightshift-metrics",
            "--nats-url",
            &url,
            "--vram-window-secs",
            "30",
        ])
        .unwrap();
        let store = nightshift_metrics::store::Store::from_pool(self.pool.clone());
        store.migrate().await.unwrap();
        let state = nightshift_metrics::AppState::new(&config, store).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(nightshift_metrics::serve(listener, state, shutdown.clone()));
        self.metrics = Some(Metrics { url: url.clone(), shutdown, handle });
        url
    }

    /// The gateway's base URL (no `/v1`).
    pub fn gateway_url(&self) -> String {
        self.gateway().url.clone()
    }

    /// Stops everything in-process, waiting for each part to shut down cleanly.
    pub async fn shutdown(mut self) {
        for worker in self.workers.drain(..) {
            if let WorkerHandle::InProcess { shutdown, task } = worker {
                shutdown.cancel();
                task.await.unwrap().unwrap();
            }
        }
        if let Some(m) = self.metrics.take() {
            m.shutdown.cancel();
            m.handle.await.unwrap().unwrap();
        }
        self.stop_gateway().await;
    }

    pub async fn submit(&self, file: Vec<u8>, endpoint: &str) -> Batch {
        let g = self.gateway();
        let form = reqwest::multipart::Form::new()
            .text("purpose", "batch")
            .part("file", reqwest::multipart::Part::bytes(file).file_name("in.jsonl"));
        let f: serde_json::Value = self
            .http
            .post(format!("{}/v1/files", g.url))
            .multipart(form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let response = self
            .http
            .post(format!("{}/v1/batches", g.url))
            .json(&json!({"input_file_id": f["id"], "endpoint": endpoint, "completion_window": "24h"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    pub async fn batch(&self, id: &str) -> Batch {
        let g = self.gateway();
        self.http
            .get(format!("{}/v1/batches/{id}", g.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn cancel(&self, id: &str) -> Batch {
        let g = self.gateway();
        let response =
            self.http.post(format!("{}/v1/batches/{id}/cancel", g.url)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Polls until `done(batch)` holds, failing after `limit`.
    pub async fn wait_until(
        &self,
        id: &str,
        limit: Duration,
        done: impl Fn(&Batch) -> bool,
    ) -> Batch {
        let deadline = Instant::now() + limit;
        loop {
            let batch = self.batch(id).await;
            if done(&batch) {
                return batch;
            }
            assert!(
                Instant::now() < deadline,
                "batch {id} stuck: {:?} {:?}",
                batch.status,
                batch.request_counts
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_final(&self, id: &str, limit: Duration) -> Batch {
        self.wait_until(id, limit, |b| b.status.is_terminal()).await
    }

    /// A file's lines, parsed as output lines.
    pub async fn lines(&self, file_id: Option<&str>) -> Vec<OutputLine> {
        let Some(file_id) = file_id else { return Vec::new() };
        let g = self.gateway();
        let text = self
            .http
            .get(format!("{}/v1/files/{file_id}/content", g.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

/// A file of `n` chat requests with custom ids `req-0..n`.
pub fn chat_file(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| {
            json!({
                "custom_id": format!("req-{i}"),
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "llama3.2:1b", "max_tokens": 16,
                         "messages": [{"role": "user", "content": format!("Count to {i}")}]},
            })
            .to_string()
                + "\n"
        })
        .collect::<String>()
        .into_bytes()
}

/// Asserts that output and error files together hold every request of an `n`-request file
/// exactly once, each file in input order. Returns (successes, failures) by custom id.
pub fn assert_exactly_once(
    n: usize,
    output: &[OutputLine],
    errors: &[OutputLine],
) -> (HashMap<String, OutputLine>, HashMap<String, OutputLine>) {
    let index = |l: &OutputLine| l.custom_id.trim_start_matches("req-").parse::<usize>().unwrap();
    for file in [output, errors] {
        let order: Vec<usize> = file.iter().map(index).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "a file is out of input order");
    }
    let ok: HashMap<String, OutputLine> =
        output.iter().map(|l| (l.custom_id.clone(), l.clone())).collect();
    let failed: HashMap<String, OutputLine> =
        errors.iter().map(|l| (l.custom_id.clone(), l.clone())).collect();
    assert_eq!(ok.len(), output.len(), "duplicate custom_id in the output file");
    assert_eq!(failed.len(), errors.len(), "duplicate custom_id in the error file");
    assert!(ok.keys().all(|k| !failed.contains_key(k)), "a request is in both files");
    assert_eq!(ok.len() + failed.len(), n, "every request exactly once");
    (ok, failed)
}

pub fn batch_done(status: BatchStatus) -> impl Fn(&Batch) -> bool {
    move |b| b.status == status
}
