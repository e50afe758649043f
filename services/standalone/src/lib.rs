//! Nightshift in one process, for a machine with nothing installed: the gateway, one worker and
//! the metrics service on the in-process queue ([`nightshift_shared::queue::local`]) and SQLite
//! files in one data directory, talking to Ollama at `OLLAMA_URL`, or to the built-in simulator
//! when no Ollama answers there (said plainly at start, never passed off as a model).
//!
//! The services are the same code as in the distributed deployment and read the same
//! environment variables (`GATEWAY_ADDR`, `METRICS_ADDR`, `OLLAMA_URL`, `WORKER_*`,
//! `NIGHTSHIFT_*`, `OLLAMA_SIM_*`); only `NATS_URL` and `DATABASE_URL` are not used. A restart on
//! the same data directory resumes unfinished batches: chunks not acknowledged are delivered
//! again (their finished requests are skipped), results not yet recorded are recorded.

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use nightshift_shared::config::DatabaseArgs;
use nightshift_shared::db::Db;
use nightshift_shared::queue::Queue;
use nightshift_shared::queue::local::LocalQueue;
use secrecy::SecretString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use supervise::Parts;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub mod supervise;

#[derive(Debug, Parser)]
#[command(name = "nightshift", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs gateway, worker and metrics in this process on an embedded queue and SQLite.
    /// Every service setting comes from the same environment variables as the distributed
    /// services (see the README's configuration table).
    Standalone(StandaloneArgs),
}

#[derive(Debug, Clone, Args)]
pub struct StandaloneArgs {
    /// Directory holding the databases and the queue; created if missing. Keep it to resume.
    #[arg(long, env = "NIGHTSHIFT_DATA_DIR", default_value = "nightshift-data")]
    pub data_dir: PathBuf,

    /// Whether to run the Ollama simulator: `auto` when no Ollama answers at OLLAMA_URL.
    #[arg(long, env = "NIGHTSHIFT_SIMULATOR", value_enum, default_value_t = Simulator::Auto)]
    pub simulator: Simulator,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Simulator {
    Auto,
    Always,
    Never,
}

/// The simulator's settings, from its `OLLAMA_SIM_*` variables.
#[derive(Debug, Parser)]
struct SimEnv {
    #[command(flatten)]
    sim: ollama_sim::SimConfig,
}

/// Each service's configuration, read from the environment as the service itself would.
struct Configs {
    gateway: nightshift_gateway::Config,
    metrics: nightshift_metrics::Config,
    worker: nightshift_worker::Config,
}

impl Configs {
    fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            gateway: nightshift_gateway::Config::try_parse_from(["nightshift-gateway"])
                .context("gateway settings")?,
            metrics: nightshift_metrics::Config::try_parse_from(["nightshift-metrics"])
                .context("metrics settings")?,
            worker: nightshift_worker::Config::try_parse_from(["nightshift-worker"])
                .context("worker settings")?,
        })
    }
}

/// What the worker talks to.
enum Backend {
    /// A server found at the configured URL (`version` when it is Ollama and said so).
    Found {
        url: String,
        version: Option<String>,
    },
    Simulated(ollama_sim::SimHandle),
}

pub async fn run(cli: Cli, shutdown: CancellationToken) -> anyhow::Result<()> {
    match cli.command {
        Command::Standalone(args) => standalone(args, shutdown).await,
    }
}

/// Starts everything, serves until `shutdown` (or until a part fails), then stops the worker first
/// (its chunks finish or go back to the queue, their results still collected) and the gateway and
/// metrics after it: see [`supervise`].
pub async fn standalone(args: StandaloneArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut configs = Configs::from_env()?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating the data directory {}", args.data_dir.display()))?;
    let data_dir = std::fs::canonicalize(&args.data_dir)
        .with_context(|| format!("reading the data directory {}", args.data_dir.display()))?;

    let gateway_store =
        nightshift_gateway::store::Store::connect(&sqlite_args(&data_dir, "gateway.db", 4)).await?;
    let metrics_store =
        nightshift_metrics::store::Store::connect(&sqlite_args(&data_dir, "metrics.db", 2)).await?;
    // One connection: SQLite has one writer at a time anyway, and nearly every queue operation
    // writes; connections contending for the lock would sleep in SQLite's busy handler.
    let Db::Sqlite(queue_pool) = Db::sqlite_file(&data_dir.join("queue.db"), 1).await? else {
        anyhow::bail!("the queue's database is not SQLite");
    };
    let retention = configs.gateway.nats.streams().results_retention;
    let queue: Arc<dyn Queue> = Arc::new(LocalQueue::open(queue_pool, retention).await?);

    let backend = find_backend(&configs.worker, args.simulator).await?;
    let configured_ollama = configs.worker.ollama_url.clone();
    if let Backend::Simulated(sim) = &backend {
        configs.worker.ollama_url = sim.url.clone();
    }

    let gateway_listener = bind(configs.gateway.addr, "GATEWAY_ADDR").await?;
    let metrics_listener = bind(configs.metrics.addr, "METRICS_ADDR").await?;
    let mut parts = Parts::new();
    let gateway = nightshift_gateway::AppState::with_queue(
        &configs.gateway,
        gateway_store,
        queue.clone(),
        parts.services_token(),
    )?;
    let metrics =
        nightshift_metrics::AppState::with_queue(&configs.metrics, metrics_store, queue.clone())
            .await?;
    let worker = Arc::new(nightshift_worker::Worker::new(&configs.worker, queue).await?);

    announce(&gateway_listener, &metrics_listener, &backend, &configured_ollama, &data_dir);

    parts.spawn_worker(nightshift_worker::work(
        configs.worker.clone(),
        worker,
        parts.worker_token(),
    ));
    parts.spawn_service(nightshift_gateway::serve(gateway_listener, gateway));
    parts.spawn_service(nightshift_metrics::serve(
        metrics_listener,
        metrics,
        parts.services_token(),
    ));
    let mut result = parts.supervise(&shutdown).await;
    if let Backend::Simulated(sim) = backend {
        result = result.and(sim.shutdown().await);
    }
    result
}

/// A SQLite database in the data directory. Few connections: SQLite writes one at a time, and
/// each connection is a thread with its own page cache (up to 2 MiB), so more of them buy
/// memory, not speed.
fn sqlite_args(dir: &Path, file: &str, connections: u32) -> DatabaseArgs {
    let url = format!("sqlite://{}", dir.join(file).display());
    DatabaseArgs { database_url: SecretString::from(url), database_max_connections: connections }
}

async fn bind(addr: SocketAddr, variable: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}: is it in use? Set {variable}"))
}

/// Ollama at `OLLAMA_URL` if it answers, else the simulator (unless told never to).
async fn find_backend(
    worker: &nightshift_worker::Config,
    simulator: Simulator,
) -> anyhow::Result<Backend> {
    if worker.backend != nightshift_worker::backend::BackendKind::Ollama {
        anyhow::ensure!(
            simulator != Simulator::Always,
            "NIGHTSHIFT_SIMULATOR=always needs NIGHTSHIFT_BACKEND=ollama"
        );
        return Ok(Backend::Found { url: worker.backend_url()?, version: None });
    }
    if simulator != Simulator::Always {
        match ollama_version(&worker.ollama_url).await {
            Ok(version) => {
                return Ok(Backend::Found {
                    url: worker.ollama_url.clone(),
                    version: Some(version),
                });
            }
            Err(e) if simulator == Simulator::Never => {
                return Err(e.context(format!(
                    "no Ollama answers at {} (OLLAMA_URL) and NIGHTSHIFT_SIMULATOR=never",
                    worker.ollama_url
                )));
            }
            Err(e) => tracing::info!(url = %worker.ollama_url, error = %e, "no Ollama found"),
        }
    }
    let mut sim = SimEnv::try_parse_from(["ollama-sim"]).context("simulator settings")?.sim;
    // The simulator's own defaults are Ollama's (one slot, its default model); unless told
    // otherwise, it plays a server sized for this worker, holding the models it loads.
    if std::env::var_os("OLLAMA_SIM_PARALLEL").is_none() {
        sim.parallel = worker.concurrency.max(1);
    }
    if std::env::var_os("OLLAMA_SIM_MODELS").is_none() {
        for model in worker.models.iter().filter(|m| !m.is_empty()) {
            if !sim.models.contains(model) {
                sim.models.push(model.clone());
            }
        }
    }
    Ok(Backend::Simulated(ollama_sim::spawn(sim).await?))
}

async fn ollama_version(url: &str) -> anyhow::Result<String> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let reply: serde_json::Value = client
        .get(format!("{}/api/version", url.trim_end_matches('/')))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await
        .context("not Ollama's /api/version answer")?;
    reply["version"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("/api/version answered without a version"))
}

/// Says where everything is. On stderr, as the start-up banner of a server: the logs follow it.
fn announce(
    gateway: &TcpListener,
    metrics: &TcpListener,
    backend: &Backend,
    configured_ollama: &str,
    data_dir: &Path,
) {
    let addr = |l: &TcpListener| l.local_addr().map_or("?".into(), |a| a.to_string());
    let backend = match backend {
        Backend::Found { url, version: Some(v) } => format!("Ollama {v} at {url}"),
        Backend::Found { url, version: None } => format!("OpenAI-compatible server at {url}"),
        Backend::Simulated(sim) => format!(
            "SIMULATED Ollama (ollama-sim) at {}: no model runs, answers are synthetic. \
             Start Ollama at {} (OLLAMA_URL) for real completions",
            sim.url, configured_ollama
        ),
    };
    eprintln!(
        "Nightshift standalone\n  \
         API:      http://{} (OpenAI Files and Batches at /v1)\n  \
         metrics:  http://{}\n  \
         backend:  {backend}\n  \
         data:     {} (gateway.db, metrics.db, queue.db)",
        addr(gateway),
        addr(metrics),
        data_dir.display()
    );
    tracing::info!(
        api = %addr(gateway),
        metrics = %addr(metrics),
        backend = %backend,
        data_dir = %data_dir.display(),
        "standalone started"
    );
}
