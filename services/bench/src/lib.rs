//! `nightshift-bench`: measures the whole stack on one machine, each figure side by side in one
//! run so that noise on a shared machine cancels in the ratios, and renders a markdown report.
//!
//! # Layout
//! - [`config`]: flags, and the sizes of a full or `--quick` run.
//! - [`stack`]: a deployment of real release processes beside an ollama-sim: distributed
//!   (nats-server, gateway, metrics, workers on a fresh database) or standalone (one
//!   `nightshift standalone` on a fresh data directory); [`procs`]: processes and their memory.
//! - [`scenarios`]: one module per figure; [`direct`]: the plain client that measures the
//!   backend's capacity; [`input`]: batch input files.
//! - [`api`]: the HTTP calls; [`timeline`]: a batch polled every 20 ms into stage moments;
//!   [`logs`]: the gateway's own stage timings; [`cpu`]: where the CPU went.
//! - [`stats`], [`tables`], [`report`], [`sections`]: the arithmetic and the markdown, each
//!   figure's deployments side by side.

pub mod api;
pub mod config;
pub mod cpu;
pub mod direct;
pub mod input;
pub mod logs;
pub mod procs;
pub mod report;
pub mod scenarios;
pub mod sections;
pub mod stack;
pub mod stats;
pub mod tables;
pub mod timeline;

pub use config::{Config, Deployment, Figure, Sizes};
pub use report::Report;

use anyhow::Context;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Runs every figure asked for on every deployment asked for, each on a stack of its own, one
/// deployment right after the other, and returns the report. A figure that fails is reported
/// as such; the others still run.
pub async fn run(config: Config) -> anyhow::Result<Report> {
    let deployments = config.deployments();
    stack::check_binaries(&config.bin_dir, &deployments)?;
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let run_dir = config.run_dir.clone().unwrap_or_else(|| format!("target/bench/{stamp}").into());
    std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    let env = stack::Env {
        bin_dir: config.bin_dir.clone(),
        nats_server: config.nats_server.clone(),
        admin_database_url: config.database_url.clone(),
        run_dir: run_dir.clone(),
        stamp: stamp.to_string(),
        service_log: config.service_log.clone(),
        http: reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(600))
            .build()
            .context("building the HTTP client")?,
    };
    tracing::info!(run_dir = %run_dir.display(), quick = config.quick, "bench starting");
    let sizes = config.sizes();
    let started = Instant::now();
    let mut report = Report {
        quick: config.quick,
        deployments: deployments.clone(),
        load_before: load_average(),
        ..Report::default()
    };
    let (workers, ceiling_concurrency) = (config.workers, config.ceiling_concurrency);
    // Each figure on each deployment back to back, so both see the machine in the same state.
    for &d in deployments.iter().filter(|_| config.wants(Figure::Efficiency)) {
        let e = scenarios::efficiency::run(&env, &sizes, d, workers).await;
        report.efficiency.push((d, keep(e)));
    }
    for &d in deployments.iter().filter(|_| config.wants(Figure::Ceiling)) {
        let c = scenarios::ceiling::run(&env, &sizes, d, workers, ceiling_concurrency).await;
        report.ceiling.push((d, keep(c)));
    }
    for &d in deployments.iter().filter(|_| config.wants(Figure::Ingest)) {
        report.ingest.push((d, keep(scenarios::ingest::run(&env, &sizes, d).await)));
    }
    for &d in deployments.iter().filter(|_| config.wants(Figure::Stability)) {
        let s = scenarios::stability::run(&env, &sizes, d, workers).await;
        report.stability.push((d, keep(s)));
    }
    for &d in deployments.iter().filter(|_| config.wants(Figure::Real)) {
        report.real.push((d, keep(scenarios::real::run(&env, &sizes, d, workers).await)));
    }
    report.elapsed = started.elapsed();
    report.load_after = load_average();
    tracing::info!(logs = %run_dir.display(), "bench done");
    Ok(report)
}

/// A figure's outcome, with the cause chain of a failure.
fn keep<T>(result: anyhow::Result<T>) -> report::Figure<T> {
    result.map_err(|e| format!("{e:#}"))
}

/// The 1, 5 and 15 minute load averages.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".into())
}
