//! Stability: back-to-back batches on one stack; each service's memory after each batch, and
//! the throughput variance across batches as the test plan computes it.

use super::{BatchRun, run_batch};
use crate::config::{Deployment, Sizes};
use crate::procs::Memory;
use crate::stack::{Env, SimSpec, Stack, StackSpec};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Stability {
    pub slots: usize,
    pub latency_ms: u64,
    pub workers: usize,
    pub worker_concurrency: usize,
    pub runs: Vec<BatchRun>,
    /// Each service's memory after each batch, in batch order.
    pub memory: Vec<Vec<(String, Memory)>>,
    /// The metrics service's own multi-batch report over the same batches.
    pub report_variance_pct: Option<f64>,
}

impl Stability {
    pub fn rates(&self) -> Vec<f64> {
        self.runs.iter().filter_map(BatchRun::rate).collect()
    }

    pub fn variance_pct(&self) -> Option<f64> {
        crate::stats::variance_pct(&self.rates())
    }

    /// Services in the order they were read.
    pub fn services(&self) -> Vec<String> {
        self.memory.first().map(|m| m.iter().map(|(n, _)| n.clone()).collect()).unwrap_or_default()
    }

    /// RSS (MiB) of `service` after each batch.
    pub fn rss_of(&self, service: &str) -> Vec<f64> {
        self.memory
            .iter()
            .filter_map(|m| m.iter().find(|(n, _)| n == service).map(|(_, m)| m.rss_mib()))
            .collect()
    }

    /// The largest change of RSS from the first batch to the last among Nightshift's own
    /// services (nats-server, a dependency, is reported on its own), with the service's name.
    pub fn worst_drift_pct(&self) -> Option<(String, f64)> {
        self.services()
            .into_iter()
            .filter(|s| s != NATS)
            .filter_map(|s| Some((s.clone(), crate::stats::drift_pct(&self.rss_of(&s))?)))
            .reduce(|a, b| if b.1.abs() > a.1.abs() { b } else { a })
    }

    /// nats-server's change of RSS from the first batch to the last.
    pub fn nats_drift_pct(&self) -> Option<f64> {
        crate::stats::drift_pct(&self.rss_of(NATS))
    }
}

/// The process name nats-server's memory is read under.
pub const NATS: &str = "nats-server";

pub async fn run(
    env: &Env,
    sizes: &Sizes,
    deployment: Deployment,
    workers: usize,
) -> anyhow::Result<Stability> {
    let workers = workers.max(1);
    let slots = sizes.stability_slots;
    let (workers, worker_concurrency) = deployment.shape(workers, slots.div_ceil(workers));
    let spec = StackSpec {
        name: "stability".into(),
        deployment,
        sim: SimSpec { parallel: slots, latency_ms: sizes.stability_latency_ms, max_queue: 512 },
        workers,
        worker_concurrency,
        metrics: true,
        worker_env: Vec::new(),
    };
    let input = env.run_dir.join(format!("stability-{}.jsonl", deployment.as_str()));
    crate::input::write_file(&input, sizes.stability_requests, None)?;
    let mut stack = Stack::start(env, &spec).await?;
    let result = measure(env, sizes, &mut stack, &input).await;
    stack.stop().await?;
    let _ = std::fs::remove_file(&input);
    let (runs, memory, report_variance_pct) = result?;
    Ok(Stability {
        slots,
        latency_ms: sizes.stability_latency_ms,
        workers,
        worker_concurrency,
        runs,
        memory,
        report_variance_pct,
    })
}

type Measured = (Vec<BatchRun>, Vec<Vec<(String, Memory)>>, Option<f64>);

async fn measure(
    env: &Env,
    sizes: &Sizes,
    stack: &mut Stack,
    input: &std::path::Path,
) -> anyhow::Result<Measured> {
    let mut runs = Vec::new();
    let mut memory = Vec::new();
    for n in 1..=sizes.stability_batches {
        tracing::info!(batch = n, requests = sizes.stability_requests, "stability");
        runs.push(run_batch(&env.http, stack, input, sizes.batch_limit).await?);
        stack.ensure_alive()?;
        memory.push(stack.service_memory()?);
    }
    // The metrics service records batch events asynchronously; give the last one a moment.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ids: Vec<String> = runs.iter().map(|r| r.batch.id.clone()).collect();
    let report = match &stack.metrics_url {
        Some(url) => {
            crate::api::report_variance_pct(&env.http, url, &ids).await.unwrap_or_else(|e| {
                tracing::warn!(error = ?e, "no multi-batch report");
                None
            })
        }
        None => None,
    };
    Ok((runs, memory, report))
}
