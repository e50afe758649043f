//! Pipeline ceiling: a backend that answers at once, so the rate is what the pipeline itself
//! can do, with the time each stage took.

use super::{BatchRun, run_batch};
use crate::config::{Deployment, Sizes};
use crate::logs::GatewayTimings;
use crate::stack::{Env, SimSpec, Stack, StackSpec};
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Ceiling {
    pub workers: usize,
    pub worker_concurrency: usize,
    pub file_bytes: u64,
    pub run: BatchRun,
    pub gateway: GatewayTimings,
}

pub async fn run(
    env: &Env,
    sizes: &Sizes,
    deployment: Deployment,
    workers: usize,
    worker_concurrency: usize,
) -> anyhow::Result<Ceiling> {
    let (workers, worker_concurrency) = deployment.shape(workers.max(1), worker_concurrency.max(1));
    let slots = workers * worker_concurrency;
    let spec = StackSpec {
        name: "ceiling".into(),
        deployment,
        sim: SimSpec { parallel: slots, latency_ms: 0, max_queue: 4 * slots },
        workers,
        worker_concurrency,
        metrics: true,
        worker_env: Vec::new(),
    };
    let input = env.run_dir.join(format!("ceiling-{}.jsonl", deployment.as_str()));
    let file_bytes = crate::input::write_file(&input, sizes.ceiling_requests, None)?;
    let mut stack = Stack::start(env, &spec).await?;
    tracing::info!(requests = sizes.ceiling_requests, "ceiling: one batch, zero latency");
    let result = run_batch(&env.http, &stack, &input, sizes.batch_limit).await;
    let gateway = match &result {
        Ok(run) => ended(&stack.gateway.log, &run.batch.id).await,
        Err(_) => GatewayTimings::default(),
    };
    let alive = stack.ensure_alive();
    stack.stop().await?;
    let _ = std::fs::remove_file(&input);
    let run = result?;
    alive?;
    Ok(Ceiling { workers, worker_concurrency, file_bytes, run, gateway })
}

/// The gateway's timings of the batch once it has logged its end, which it does a moment after
/// the batch reads `completed` (it announces the end on the queue first); what it has logged
/// after a few seconds otherwise.
async fn ended(log: &Path, batch_id: &str) -> GatewayTimings {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let timings = GatewayTimings::read(log, batch_id);
        if timings.ended.is_some() || Instant::now() > deadline {
            return timings;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
