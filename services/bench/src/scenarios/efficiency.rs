//! Efficiency: the backend's capacity measured by a direct client, then the rate the whole
//! pipeline gets out of the same backend, side by side.

use super::{BatchRun, run_batch};
use crate::config::{Deployment, Sizes};
use crate::direct::{DirectRun, saturate};
use crate::stack::{Env, SimSpec, Stack, StackSpec};

#[derive(Debug, Clone)]
pub struct Efficiency {
    pub slots: usize,
    pub latency_ms: u64,
    pub workers: usize,
    pub worker_concurrency: usize,
    pub direct: DirectRun,
    pub pipeline: BatchRun,
}

impl Efficiency {
    /// Pipeline rate over direct rate.
    pub fn ratio(&self) -> Option<f64> {
        Some(self.pipeline.rate()? / self.direct.rate()?)
    }
}

pub async fn run(
    env: &Env,
    sizes: &Sizes,
    deployment: Deployment,
    workers: usize,
) -> anyhow::Result<Efficiency> {
    let workers = workers.max(1);
    let slots = sizes.efficiency_slots;
    // The same number of requests in flight as the direct client: one per slot.
    let (workers, worker_concurrency) = deployment.shape(workers, slots.div_ceil(workers));
    let spec = StackSpec {
        name: "efficiency".into(),
        deployment,
        sim: SimSpec { parallel: slots, latency_ms: sizes.efficiency_latency_ms, max_queue: 512 },
        workers,
        worker_concurrency,
        metrics: true,
        worker_env: Vec::new(),
    };
    let mut stack = Stack::start(env, &spec).await?;
    let result = measure(env, sizes, &mut stack).await;
    stack.stop().await?;
    let (direct, pipeline) = result?;
    Ok(Efficiency {
        slots,
        latency_ms: sizes.efficiency_latency_ms,
        workers,
        worker_concurrency,
        direct,
        pipeline,
    })
}

async fn measure(
    env: &Env,
    sizes: &Sizes,
    stack: &mut Stack,
) -> anyhow::Result<(DirectRun, BatchRun)> {
    let input = env.run_dir.join(format!("efficiency-{}.jsonl", stack.deployment.as_str()));
    crate::input::write_file(&input, sizes.efficiency_requests, None)?;
    tracing::info!(requests = sizes.efficiency_requests, "efficiency: direct client");
    let direct =
        saturate(&env.http, &stack.sim_url, sizes.efficiency_requests, sizes.efficiency_slots)
            .await?;
    tracing::info!(rate = direct.rate(), "efficiency: the pipeline");
    let pipeline = run_batch(&env.http, stack, &input, sizes.batch_limit).await?;
    stack.ensure_alive()?;
    let _ = std::fs::remove_file(&input);
    Ok((direct, pipeline))
}
