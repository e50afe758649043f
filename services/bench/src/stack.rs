//! One measured deployment of real release processes beside an `ollama-sim`: distributed (a
//! fresh database, a dedicated nats-server, the gateway, optionally the metrics service, and N
//! workers) or standalone (one `nightshift standalone` process on a fresh data directory).

use crate::config::Deployment;
use crate::procs::{Memory, Proc, free_port};
use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use sqlx::migrate::MigrateDatabase;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The model every generated request names; the simulator accepts any.
pub const MODEL: &str = "llama3.2:1b";
const READY_LIMIT: Duration = Duration::from_secs(60);

/// The simulated backend's settings.
#[derive(Debug, Clone, Copy)]
pub struct SimSpec {
    pub parallel: usize,
    pub latency_ms: u64,
    pub max_queue: usize,
}

/// What to start.
#[derive(Debug, Clone)]
pub struct StackSpec {
    /// Names the database and, with the deployment, the log folder.
    pub name: String,
    pub deployment: Deployment,
    pub sim: SimSpec,
    /// Distributed: worker processes. Standalone always runs its one worker.
    pub workers: usize,
    pub worker_concurrency: usize,
    /// Distributed: whether to start the metrics service (standalone always runs it).
    pub metrics: bool,
    /// Settings every worker (standalone: the process) gets on top of the defaults, to point
    /// it at another backend than the simulator.
    pub worker_env: Vec<(&'static str, String)>,
}

impl StackSpec {
    /// The folder of the stack's logs under the run dir: `<name>-<deployment>`.
    pub fn log_folder(&self) -> String {
        format!("{}-{}", self.name, self.deployment.as_str())
    }
}

/// Where things are, shared by every stack of a run.
#[derive(Debug, Clone)]
pub struct Env {
    pub bin_dir: PathBuf,
    pub nats_server: PathBuf,
    pub admin_database_url: SecretString,
    pub run_dir: PathBuf,
    /// Makes database names unique to this run.
    pub stamp: String,
    /// RUST_LOG of the services.
    pub service_log: String,
    pub http: reqwest::Client,
}

/// A running stack; [`Stack::stop`] kills it and drops its database.
pub struct Stack {
    pub deployment: Deployment,
    pub gateway_url: String,
    pub metrics_url: Option<String>,
    pub sim_url: String,
    /// The process serving the API: the gateway, or standalone the whole product.
    pub gateway: Proc,
    pub metrics: Option<Proc>,
    pub workers: Vec<Proc>,
    pub sim: Proc,
    pub nats: Option<Proc>,
    database: Option<Database>,
    /// JetStream's store, or standalone's data directory.
    _store: tempfile::TempDir,
}

/// A distributed stack's Postgres database.
struct Database {
    url: SecretString,
    /// The name, which Postgres puts in its backends' process titles.
    name: String,
}

impl Stack {
    pub async fn start(env: &Env, spec: &StackSpec) -> anyhow::Result<Self> {
        let log_dir = env.run_dir.join(spec.log_folder());
        std::fs::create_dir_all(&log_dir)
            .with_context(|| format!("creating {}", log_dir.display()))?;
        if spec.deployment == Deployment::Standalone {
            return Self::launch_standalone(env, spec, &log_dir)
                .await
                .with_context(|| format!("starting the {} stack", spec.log_folder()));
        }
        let (database_url, database) = database_url(env, &spec.name)?;
        let url = database_url.expose_secret();
        if sqlx::Postgres::database_exists(url).await.context("cannot reach Postgres")? {
            sqlx::Postgres::force_drop_database(url).await.context("dropping a stale database")?;
        }
        sqlx::Postgres::create_database(url).await.context("creating the bench database")?;
        match Self::launch(env, spec, &log_dir, database_url.clone(), database).await {
            Ok(stack) => Ok(stack),
            Err(e) => {
                // The processes started so far die with their handles; the database would stay.
                let _ = sqlx::Postgres::force_drop_database(database_url.expose_secret()).await;
                Err(e.context(format!("starting the {} stack", spec.log_folder())))
            }
        }
    }

    /// Starts the processes of a stack whose database exists.
    async fn launch(
        env: &Env,
        spec: &StackSpec,
        log_dir: &Path,
        database_url: SecretString,
        database: String,
    ) -> anyhow::Result<Self> {
        let store = tempfile::Builder::new()
            .prefix("nightshift-bench-nats-")
            .tempdir()
            .context("creating the JetStream store dir")?;
        let nats_port = free_port()?;
        let mut nats = Proc::spawn(
            "nats-server",
            &env.nats_server,
            &[
                "-a".into(),
                "127.0.0.1".into(),
                "-p".into(),
                nats_port.to_string(),
                "-js".into(),
                "-sd".into(),
                store.path().display().to_string(),
            ],
            &[],
            log_dir,
        )?;
        nats.wait_port(nats_port, READY_LIMIT).await?;
        let nats_url = format!("nats://127.0.0.1:{nats_port}");

        let (sim, sim_url) = start_sim(env, spec.sim, log_dir).await?;

        let common = [
            ("RUST_LOG", env.service_log.clone()),
            ("NATS_URL", nats_url.clone()),
            ("DATABASE_URL", database_url.expose_secret().to_owned()),
        ];
        let gateway_addr = format!("127.0.0.1:{}", free_port()?);
        let gateway_url = format!("http://{gateway_addr}");
        let mut envs = common.to_vec();
        envs.push(("GATEWAY_ADDR", gateway_addr));
        let mut gateway =
            Proc::spawn("gateway", &bin(env, "nightshift-gateway"), &[], &envs, log_dir)?;
        gateway.wait_http(&env.http, &format!("{gateway_url}/readyz"), READY_LIMIT).await?;

        let (metrics, metrics_url) = if spec.metrics {
            let addr = format!("127.0.0.1:{}", free_port()?);
            let url = format!("http://{addr}");
            let mut envs = common.to_vec();
            envs.push(("METRICS_ADDR", addr));
            let mut p =
                Proc::spawn("metrics", &bin(env, "nightshift-metrics"), &[], &envs, log_dir)?;
            p.wait_http(&env.http, &format!("{url}/readyz"), READY_LIMIT).await?;
            (Some(p), Some(url))
        } else {
            (None, None)
        };

        let mut workers = Vec::with_capacity(spec.workers);
        for i in 1..=spec.workers {
            let envs = [
                ("RUST_LOG", env.service_log.clone()),
                ("NATS_URL", nats_url.clone()),
                ("OLLAMA_URL", sim_url.clone()),
                ("WORKER_ID", format!("bench-{i}")),
                ("WORKER_CONCURRENCY", spec.worker_concurrency.to_string()),
                ("WORKER_MODELS", MODEL.to_owned()),
            ];
            let envs: Vec<_> = envs.into_iter().chain(spec.worker_env.iter().cloned()).collect();
            let name = format!("worker-{i}");
            workers.push(Proc::spawn(&name, &bin(env, "nightshift-worker"), &[], &envs, log_dir)?);
        }
        for w in &mut workers {
            w.wait_for_log("worker started", READY_LIMIT).await?;
        }
        tracing::info!(stack = %spec.log_folder(), workers = spec.workers, "stack ready");
        Ok(Self {
            deployment: Deployment::Distributed,
            gateway_url,
            metrics_url,
            sim_url,
            gateway,
            metrics,
            workers,
            sim,
            nats: Some(nats),
            database: Some(Database { url: database_url, name: database }),
            _store: store,
        })
    }

    /// Starts `ollama-sim` and one `nightshift standalone` process on a fresh data directory,
    /// pointed at it (and never at a simulator of its own).
    async fn launch_standalone(
        env: &Env,
        spec: &StackSpec,
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        let data = tempfile::Builder::new()
            .prefix("nightshift-bench-data-")
            .tempdir()
            .context("creating the standalone data dir")?;
        let (sim, sim_url) = start_sim(env, spec.sim, log_dir).await?;
        let gateway_addr = format!("127.0.0.1:{}", free_port()?);
        let metrics_addr = format!("127.0.0.1:{}", free_port()?);
        let gateway_url = format!("http://{gateway_addr}");
        let metrics_url = format!("http://{metrics_addr}");
        let envs = [
            ("RUST_LOG", env.service_log.clone()),
            ("NIGHTSHIFT_DATA_DIR", data.path().display().to_string()),
            ("NIGHTSHIFT_SIMULATOR", "never".to_owned()),
            ("GATEWAY_ADDR", gateway_addr),
            ("METRICS_ADDR", metrics_addr),
            ("OLLAMA_URL", sim_url.clone()),
            ("WORKER_ID", "bench-1".to_owned()),
            ("WORKER_CONCURRENCY", spec.worker_concurrency.max(1).to_string()),
            ("WORKER_MODELS", MODEL.to_owned()),
        ];
        let envs: Vec<_> = envs.into_iter().chain(spec.worker_env.iter().cloned()).collect();
        let mut process = Proc::spawn(
            STANDALONE,
            &bin(env, "nightshift"),
            &["standalone".into()],
            &envs,
            log_dir,
        )?;
        process.wait_http(&env.http, &format!("{gateway_url}/readyz"), READY_LIMIT).await?;
        process.wait_http(&env.http, &format!("{metrics_url}/readyz"), READY_LIMIT).await?;
        process.wait_for_log("worker started", READY_LIMIT).await?;
        tracing::info!(stack = %spec.log_folder(), "stack ready");
        Ok(Self {
            deployment: Deployment::Standalone,
            gateway_url,
            metrics_url: Some(metrics_url),
            sim_url,
            gateway: process,
            metrics: None,
            workers: Vec::new(),
            sim,
            nats: None,
            database: None,
            _store: data,
        })
    }

    /// The Postgres database's name, which its backends' process titles carry (distributed).
    pub fn database_name(&self) -> Option<&str> {
        self.database.as_ref().map(|d| d.name.as_str())
    }

    /// Fails if any process of the stack has died.
    pub fn ensure_alive(&mut self) -> anyhow::Result<()> {
        self.gateway.ensure_alive()?;
        if let Some(m) = &mut self.metrics {
            m.ensure_alive()?;
        }
        for w in &mut self.workers {
            w.ensure_alive()?;
        }
        if let Some(n) = &mut self.nats {
            n.ensure_alive()?;
        }
        self.sim.ensure_alive()
    }

    /// Every process of the stack, the simulator and nats-server included.
    pub fn all_procs(&self) -> Vec<&Proc> {
        let mut procs = vec![&self.gateway];
        procs.extend(self.metrics.as_ref());
        procs.extend(self.workers.iter());
        procs.push(&self.sim);
        procs.extend(self.nats.as_ref());
        procs
    }

    /// Memory of each service of the product and of nats-server (not the simulator), by name;
    /// standalone: of its one process.
    pub fn service_memory(&self) -> anyhow::Result<Vec<(String, Memory)>> {
        let mut procs = vec![&self.gateway];
        procs.extend(self.metrics.as_ref());
        procs.extend(self.workers.iter());
        procs.extend(self.nats.as_ref());
        procs.into_iter().map(|p| Ok((p.name.clone(), p.memory()?))).collect()
    }

    /// Kills every process, then drops the database (distributed) or the data dir (standalone).
    pub async fn stop(self) -> anyhow::Result<()> {
        for w in self.workers {
            w.stop().await;
        }
        if let Some(m) = self.metrics {
            m.stop().await;
        }
        self.gateway.stop().await;
        self.sim.stop().await;
        if let Some(n) = self.nats {
            n.stop().await;
        }
        match self.database {
            Some(db) => sqlx::Postgres::force_drop_database(db.url.expose_secret())
                .await
                .context("dropping the bench database"),
            None => Ok(()),
        }
    }
}

/// The name the standalone process's logs, memory and CPU are reported under.
pub const STANDALONE: &str = "nightshift";

/// Starts the simulator with `spec` and waits until it answers; returns it and its URL.
async fn start_sim(env: &Env, spec: SimSpec, log_dir: &Path) -> anyhow::Result<(Proc, String)> {
    let sim_addr = format!("127.0.0.1:{}", free_port()?);
    let sim_url = format!("http://{sim_addr}");
    let mut sim = Proc::spawn(
        "ollama-sim",
        &bin(env, "ollama-sim"),
        &[
            "--addr".into(),
            sim_addr,
            "--parallel".into(),
            spec.parallel.to_string(),
            "--latency-ms".into(),
            spec.latency_ms.to_string(),
            "--max-queue".into(),
            spec.max_queue.to_string(),
            "--load-ms".into(),
            "0".into(),
        ],
        &[],
        log_dir,
    )?;
    sim.wait_http(&env.http, &format!("{sim_url}/api/version"), READY_LIMIT).await?;
    Ok((sim, sim_url))
}

fn bin(env: &Env, name: &str) -> PathBuf {
    env.bin_dir.join(name)
}

/// The admin URL with the database `nightshift_bench_<stamp>_<name>`, and that name.
fn database_url(env: &Env, name: &str) -> anyhow::Result<(SecretString, String)> {
    let mut url = reqwest::Url::parse(env.admin_database_url.expose_secret())
        .context("BENCH_DATABASE_URL is not a URL")?;
    let db: String = format!("nightshift_bench_{}_{name}", env.stamp)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
        .collect();
    url.set_path(&format!("/{db}"));
    Ok((SecretString::from(url.to_string()), db))
}

/// The binaries the stacks of `deployments` need.
pub fn binaries(deployments: &[Deployment]) -> Vec<&'static str> {
    let mut names = Vec::new();
    if deployments.contains(&Deployment::Distributed) {
        names.extend(["nightshift-gateway", "nightshift-worker", "nightshift-metrics"]);
    }
    if deployments.contains(&Deployment::Standalone) {
        names.push("nightshift");
    }
    names.push("ollama-sim");
    names
}

/// Fails, before anything starts, if a binary the stacks of `deployments` need is missing.
pub fn check_binaries(bin_dir: &Path, deployments: &[Deployment]) -> anyhow::Result<()> {
    for name in binaries(deployments) {
        let path = bin_dir.join(name);
        anyhow::ensure!(
            path.is_file(),
            "{} is missing: build with `cargo build --release -p nightshift-gateway -p \
             nightshift-worker -p nightshift-metrics -p nightshift -p ollama-sim` or set \
             NIGHTSHIFT_BIN_DIR",
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_deployment_needs_its_own_binaries_and_the_simulator() {
        use Deployment::*;
        assert_eq!(binaries(&[Standalone]), ["nightshift", "ollama-sim"]);
        assert_eq!(
            binaries(&[Distributed]),
            ["nightshift-gateway", "nightshift-worker", "nightshift-metrics", "ollama-sim"]
        );
        assert_eq!(binaries(&[Distributed, Standalone]).len(), 5);
    }
}
