//! Efficiency on a real model: llama.cpp's `llama-server` with Gemma 3 270M
//! (`scripts/real-model.sh`), measured by a direct client sending the batch's own bodies with as
//! many in flight as the server has slots, then through the whole pipeline
//! (`NIGHTSHIFT_BACKEND=openai`) with the same number in flight, then by the direct client again:
//! a CPU-bound model on a shared machine drifts, and the two direct runs bracket the pipeline's.

use super::{BatchRun, run_batch};
use crate::config::{Deployment, Sizes};
use crate::direct::{DirectRun, saturate_with};
use crate::procs::free_port;
use crate::stack::{Env, SimSpec, Stack, StackSpec};
use anyhow::Context;
use std::process::Command;
use std::sync::Arc;

/// The model name the server answers to.
pub const MODEL: &str = "gemma3:270m";

#[derive(Debug, Clone)]
pub struct RealEfficiency {
    pub slots: usize,
    pub max_tokens: u64,
    pub workers: usize,
    pub worker_concurrency: usize,
    pub direct: DirectRun,
    pub pipeline: BatchRun,
    pub direct_after: DirectRun,
}

impl RealEfficiency {
    /// The direct client's rate, both runs together.
    pub fn direct_rate(&self) -> Option<f64> {
        let requests = self.direct.requests + self.direct_after.requests;
        crate::stats::rate(requests, self.direct.elapsed + self.direct_after.elapsed)
    }

    /// Pipeline rate over direct rate.
    pub fn ratio(&self) -> Option<f64> {
        Some(self.pipeline.rate()? / self.direct_rate()?)
    }
}

/// A `llama-server` started by `scripts/real-model.sh`, stopped on drop.
struct Server {
    url: String,
    pid: String,
}

/// `scripts/real-model.sh` of the repository the bench runs in (from its root, as
/// `scripts/bench.sh` does, or from a folder inside it, as its tests do).
fn script() -> anyhow::Result<std::path::PathBuf> {
    let here = std::env::current_dir().context("the working directory")?;
    here.ancestors()
        .map(|dir| dir.join("scripts/real-model.sh"))
        .find(|path| path.is_file())
        .context("scripts/real-model.sh not found: run the bench inside the repository")
}

impl Server {
    fn start(slots: usize) -> anyhow::Result<Self> {
        let port = free_port()?;
        let out = Command::new("bash")
            .arg(script()?)
            .args(["start", &port.to_string()])
            .env("LLAMA_PARALLEL", slots.to_string())
            .env("LLAMA_CTX", (slots * 1024).to_string())
            .output()
            .context("running scripts/real-model.sh")?;
        anyhow::ensure!(
            out.status.success(),
            "the real model server did not start; install it with `scripts/real-model.sh \
             install`: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut words = stdout.split_whitespace();
        let url = words.next().context("no URL from scripts/real-model.sh start")?.to_owned();
        let pid = words.next().context("no pid from scripts/real-model.sh start")?.to_owned();
        Ok(Self { url, pid })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(script) = script() {
            let _ = Command::new("bash").arg(script).args(["stop", &self.pid]).status();
        }
    }
}

pub async fn run(
    env: &Env,
    sizes: &Sizes,
    deployment: Deployment,
    workers: usize,
) -> anyhow::Result<RealEfficiency> {
    let slots = sizes.real_slots;
    let (workers, worker_concurrency) =
        deployment.shape(workers.max(1), slots.div_ceil(workers.max(1)));
    let server = Server::start(slots)?;
    let spec = StackSpec {
        name: "real".into(),
        deployment,
        // Idle beside the real server: the stack always has one.
        sim: SimSpec { parallel: 1, latency_ms: 0, max_queue: 512 },
        workers,
        worker_concurrency,
        metrics: false,
        worker_env: vec![
            ("NIGHTSHIFT_BACKEND", "openai".into()),
            ("OPENAI_BASE_URL", server.url.clone()),
            ("WORKER_MODELS", MODEL.into()),
        ],
    };
    let mut stack = Stack::start(env, &spec).await?;
    let result = measure(env, sizes, &mut stack, &server.url).await;
    stack.stop().await?;
    drop(server);
    let (direct, pipeline, direct_after) = result?;
    Ok(RealEfficiency {
        slots,
        max_tokens: sizes.real_max_tokens,
        workers,
        worker_concurrency,
        direct,
        pipeline,
        direct_after,
    })
}

async fn measure(
    env: &Env,
    sizes: &Sizes,
    stack: &mut Stack,
    server: &str,
) -> anyhow::Result<(DirectRun, BatchRun, DirectRun)> {
    let input = env.run_dir.join(format!("real-{}.jsonl", stack.deployment.as_str()));
    let (requests, max_tokens) = (sizes.real_requests, sizes.real_max_tokens);
    crate::input::write_openai_file(&input, requests, MODEL, max_tokens)?;
    tracing::info!(requests, "real model: direct client");
    let body = Arc::new(move |i| crate::input::openai_chat(i, MODEL, max_tokens));
    let url = format!("{server}/v1/chat/completions");
    let direct = saturate_with(&env.http, &url, requests, sizes.real_slots, body.clone()).await?;
    tracing::info!(rate = direct.rate(), "real model: the pipeline");
    let pipeline = run_batch(&env.http, stack, &input, sizes.real_batch_limit).await?;
    stack.ensure_alive()?;
    tracing::info!(rate = pipeline.rate(), "real model: the direct client again");
    let after = saturate_with(&env.http, &url, requests, sizes.real_slots, body).await?;
    let _ = std::fs::remove_file(&input);
    Ok((direct, pipeline, after))
}
