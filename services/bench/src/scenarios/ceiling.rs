//! Pipeline ceiling: a backend that answers at once, so the rate is what the pipeline itself
//! can do, with the time each stage took.

use super::{BatchRun, run_batch};
use crate::config::Sizes;
use crate::logs::GatewayTimings;
use crate::stack::{Env, SimSpec, Stack, StackSpec};

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
    workers: usize,
    worker_concurrency: usize,
) -> anyhow::Result<Ceiling> {
    let workers = workers.max(1);
    let slots = workers * worker_concurrency.max(1);
    let spec = StackSpec {
        name: "ceiling".into(),
        sim: SimSpec { parallel: slots, latency_ms: 0, max_queue: 4 * slots },
        workers,
        worker_concurrency,
        metrics: true,
    };
    let input = env.run_dir.join("ceiling.jsonl");
    let file_bytes = crate::input::write_file(&input, sizes.ceiling_requests, None)?;
    let mut stack = Stack::start(env, &spec).await?;
    tracing::info!(requests = sizes.ceiling_requests, "ceiling: one batch, zero latency");
    let result = run_batch(&env.http, &stack, &input, sizes.batch_limit).await;
    let alive = stack.ensure_alive();
    let gateway_log = stack.gateway.log.clone();
    stack.stop().await?;
    let _ = std::fs::remove_file(&input);
    let run = result?;
    alive?;
    let gateway = GatewayTimings::read(&gateway_log, &run.batch.id);
    Ok(Ceiling { workers, worker_concurrency, file_bytes, run, gateway })
}
