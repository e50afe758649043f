//! The whole product under test, in either deployment ([`Mode`]):
//! - distributed: a test-owned NATS, an in-process gateway and metrics service on the test's fresh
//!   Postgres database, and workers either in-process or as real processes a test may SIGKILL;
//! - standalone: one `nightshift standalone` process on a temporary data directory, which a test
//!   may SIGKILL and start again (the worker, the gateway and its collector die with it).
//!
//! Both use the simulator in the test's process, so a test reads its counters either way, and
//! the same test body runs against both.

use crate::NatsServer;
use crate::cluster::NatsCluster;
use crate::gateway::InProcessGateway;
use crate::proxy::FaultProxy;
use crate::standalone::Standalone;
use clap::Parser;
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

/// Which deployment a [`Stack`] runs.
pub enum Mode {
    /// NATS JetStream and the test's Postgres database (`#[sqlx::test]`).
    Distributed(PgPool),
    /// One `nightshift standalone` process: in-process queue, SQLite.
    Standalone,
}

enum Deployment {
    Distributed { nats: Nats, pool: PgPool, postgres: Option<FaultProxy> },
    Standalone(Box<Standalone>),
}

/// The test's NATS: one server, or a JetStream cluster of three.
pub enum Nats {
    Server(NatsServer),
    Cluster(NatsCluster),
}

impl Nats {
    /// `NATS_URL` for it (a cluster's every node, comma-separated).
    pub fn url(&self) -> String {
        match self {
            Self::Server(server) => server.url(),
            Self::Cluster(cluster) => cluster.url(),
        }
    }
}

/// What a distributed stack is to fault, beyond killing processes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// The gateway reaches Postgres through a [`FaultProxy`] a test may cut.
    pub postgres_proxy: bool,
    /// A three-node JetStream cluster instead of one server.
    pub nats_cluster: bool,
}

pub struct Stack {
    pub sim: SimHandle,
    pub gateway: Option<InProcessGateway>,
    pub metrics: Option<Metrics>,
    pub workers: Vec<WorkerHandle>,
    /// Flags every worker gets, before the ones given to `spawn_worker`.
    pub worker_args: Vec<String>,
    deployment: Deployment,
    gateway_args: Vec<String>,
    http: reqwest::Client,
}

impl Stack {
    /// A stack with no worker yet; `gateway_args` are extra gateway flags. A standalone stack
    /// starts its process with the first worker (it holds the worker).
    pub async fn start(mode: Mode, sim: SimConfig, gateway_args: &[&str]) -> Stack {
        Self::start_with(mode, sim, gateway_args, Faults::default()).await
    }

    /// [`Stack::start`], distributed with the given ways to fault it.
    pub async fn start_with(
        mode: Mode,
        sim: SimConfig,
        gateway_args: &[&str],
        faults: Faults,
    ) -> Stack {
        let sim = ollama_sim::spawn(sim).await.unwrap();
        let deployment = match mode {
            Mode::Distributed(pool) => {
                let nats = if faults.nats_cluster {
                    Nats::Cluster(NatsCluster::start())
                } else {
                    Nats::Server(NatsServer::start())
                };
                let postgres = if faults.postgres_proxy {
                    let options = pool.connect_options();
                    let target = format!("{}:{}", options.get_host(), options.get_port());
                    Some(FaultProxy::start(&target).await)
                } else {
                    None
                };
                Deployment::Distributed { nats, pool, postgres }
            }
            Mode::Standalone => Deployment::Standalone(Box::new(Standalone::new())),
        };
        let mut stack = Stack {
            sim,
            gateway: None,
            metrics: None,
            workers: Vec::new(),
            worker_args: Vec::new(),
            deployment,
            gateway_args: gateway_args.iter().map(|s| s.to_string()).collect(),
            http: reqwest::Client::new(),
        };
        if matches!(stack.deployment, Deployment::Distributed { .. }) {
            stack.start_gateway().await;
        }
        stack
    }

    /// The test's NATS server; distributed stacks on one server only.
    pub fn nats(&self) -> &NatsServer {
        match &self.deployment {
            Deployment::Distributed { nats: Nats::Server(server), .. } => server,
            _ => panic!("this stack has no single NATS server"),
        }
    }

    /// The test's NATS, to kill and restart; distributed stacks only.
    pub fn nats_mut(&mut self) -> &mut Nats {
        match &mut self.deployment {
            Deployment::Distributed { nats, .. } => nats,
            Deployment::Standalone(_) => panic!("a standalone stack has no NATS"),
        }
    }

    fn nats_url(&self) -> String {
        match &self.deployment {
            Deployment::Distributed { nats, .. } => nats.url(),
            Deployment::Standalone(_) => panic!("a standalone stack has no NATS"),
        }
    }

    /// The proxy between the gateway and Postgres; stacks started with
    /// [`Faults::postgres_proxy`] only.
    pub fn postgres_proxy(&self) -> &FaultProxy {
        match &self.deployment {
            Deployment::Distributed { postgres: Some(proxy), .. } => proxy,
            _ => panic!("this stack has no Postgres proxy"),
        }
    }

    fn pool(&self) -> &PgPool {
        match &self.deployment {
            Deployment::Distributed { pool, .. } => pool,
            Deployment::Standalone(_) => panic!("a standalone stack has no Postgres"),
        }
    }

    /// The gateway's database, as a test may reach into it (to age a batch, say).
    pub async fn gateway_db(&self) -> nightshift_shared::db::Db {
        match &self.deployment {
            Deployment::Distributed { pool, .. } => {
                nightshift_shared::db::Db::Postgres(pool.clone())
            }
            Deployment::Standalone(s) => s.gateway_db().await,
        }
    }

    /// The data directory of a standalone stack's process.
    pub fn standalone_data_dir(&self) -> &std::path::Path {
        match &self.deployment {
            Deployment::Standalone(s) => s.data_dir(),
            Deployment::Distributed { .. } => panic!("a distributed stack has no data directory"),
        }
    }

    /// Starts the gateway (standalone: the whole process), as after a restart.
    pub async fn start_gateway(&mut self) {
        let worker_args = self.base_worker_args();
        if let Deployment::Standalone(s) = &mut self.deployment {
            s.restart(&self.gateway_args, &worker_args).await;
            return;
        }
        let db = match &self.deployment {
            // Through the proxy, with the pool settings a deployed gateway has.
            Deployment::Distributed { postgres: Some(proxy), pool, .. } => {
                let options = pool.connect_options();
                let url = format!(
                    "postgres://{}@{}/{}",
                    options.get_username(),
                    proxy.addr(),
                    options.get_database().unwrap_or("postgres")
                );
                nightshift_shared::db::Db::connect(&url, 8).await.unwrap()
            }
            _ => nightshift_shared::db::Db::Postgres(self.pool().clone()),
        };
        let args: Vec<&str> = self.gateway_args.iter().map(String::as_str).collect();
        self.gateway = Some(InProcessGateway::start(&self.nats_url(), db, &args).await);
    }

    /// Stops the gateway (its collector with it) as a restart would; standalone: the process,
    /// gracefully.
    pub async fn stop_gateway(&mut self) {
        if let Deployment::Standalone(s) = &mut self.deployment {
            s.stop().await;
            return;
        }
        if let Some(gateway) = self.gateway.take() {
            gateway.stop().await;
        }
    }

    /// Flags connecting a worker to this stack, with short retry and redelivery times.
    fn base_worker_args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
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
        if let Deployment::Distributed { nats, .. } = &self.deployment {
            args.extend(["--nats-url".to_owned(), nats.url()]);
        }
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

    /// Starts a worker as a separate process of `binary` (so a test can SIGKILL it). Standalone:
    /// starts the process, which holds the one worker, unless it runs already.
    pub async fn spawn_worker_process(&mut self, binary: &str, extra: &[&str]) {
        let mut worker_args = self.base_worker_args();
        worker_args.extend(extra.iter().map(|s| s.to_string()));
        if let Deployment::Standalone(s) = &mut self.deployment {
            if !s.running() {
                s.start(&self.gateway_args, &worker_args).await;
            }
            return;
        }
        let mut command = Command::new(binary);
        command
            .args(worker_args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true);
        self.workers.push(WorkerHandle::Process(command.spawn().expect("worker binary")));
    }

    /// SIGKILLs worker `i`, a process: no graceful shutdown, its chunks are left unacknowledged.
    /// Standalone: the whole process dies (gateway, collector and worker).
    pub async fn kill_worker(&mut self, i: usize) {
        if let Deployment::Standalone(s) = &mut self.deployment {
            s.kill().await;
            return;
        }
        match &mut self.workers[i] {
            WorkerHandle::Process(child) => child.kill().await.unwrap(),
            WorkerHandle::InProcess { .. } => panic!("only a worker process can be killed"),
        }
    }

    /// Starts the metrics service in this process, on the stack's database.
    pub async fn start_metrics(&mut self) -> String {
        let url = self.nats_url();
        let config = nightshift_metrics::Config::try_parse_from([
            "nightshift-metrics",
            "--nats-url",
            &url,
            "--vram-window-secs",
            "30",
        ])
        .unwrap();
        let store = nightshift_metrics::store::Store::from_db(nightshift_shared::db::Db::Postgres(
            self.pool().clone(),
        ));
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
        match &self.deployment {
            Deployment::Standalone(s) => s.gateway_url(),
            Deployment::Distributed { .. } => {
                self.gateway.as_ref().expect("gateway running").url.clone()
            }
        }
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

    /// GET on the gateway, waiting out a restart (a standalone process coming back).
    async fn get(&self, path: &str) -> reqwest::Response {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.http.get(format!("{}{path}", self.gateway_url())).send().await {
                Ok(response) => return response,
                Err(e) if e.is_connect() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("GET {path}: {e}"),
            }
        }
    }

    pub async fn submit(&self, file: Vec<u8>, endpoint: &str) -> Batch {
        let url = self.gateway_url();
        let form = reqwest::multipart::Form::new()
            .text("purpose", "batch")
            .part("file", reqwest::multipart::Part::bytes(file).file_name("in.jsonl"));
        let f: serde_json::Value = self
            .http
            .post(format!("{url}/v1/files"))
            .multipart(form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let response = self
            .http
            .post(format!("{url}/v1/batches"))
            .json(&json!({"input_file_id": f["id"], "endpoint": endpoint, "completion_window": "24h"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    pub async fn batch(&self, id: &str) -> Batch {
        self.get(&format!("/v1/batches/{id}")).await.json().await.unwrap()
    }

    pub async fn cancel(&self, id: &str) -> Batch {
        let url = self.gateway_url();
        let response =
            self.http.post(format!("{url}/v1/batches/{id}/cancel")).send().await.unwrap();
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
        let text = self.get(&format!("/v1/files/{file_id}/content")).await.text().await.unwrap();
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
