//! Ingest: upload and validate a large file, and a tenth of it, on a gateway with no workers;
//! the gateway's peak memory in each phase shows whether memory grows with the file.
//!
//! Standalone's worker cannot be left out: its backend takes an hour per request, so it holds
//! at most its prefetched chunks and records nothing while the gateway ingests. Its memory is
//! the one process's, gateway, worker and metrics together.

use crate::api::Gateway;
use crate::config::{Deployment, Sizes};
use crate::logs::GatewayTimings;
use crate::procs::Memory;
use crate::stack::{Env, SimSpec, Stack, StackSpec};
use crate::timeline::watch;
use anyhow::Context;
use nightshift_shared::openai::BatchStatus;
use std::time::{Duration, Instant};

/// One file through upload, validation and publishing.
#[derive(Debug, Clone)]
pub struct IngestRun {
    pub lines: u64,
    pub bytes: u64,
    pub upload: Duration,
    /// Create to `in_progress` (validated and chunks recorded), as polled.
    pub validate: Duration,
    pub gateway: GatewayTimings,
    /// Gateway memory before the upload.
    pub before: Memory,
    /// Peak RSS (MiB) during each phase.
    pub upload_peak_mib: f64,
    pub validate_peak_mib: f64,
    pub publish_peak_mib: f64,
}

impl IngestRun {
    pub fn peak_mib(&self) -> f64 {
        self.upload_peak_mib.max(self.validate_peak_mib).max(self.publish_peak_mib)
    }
}

#[derive(Debug, Clone)]
pub struct Ingest {
    pub small: IngestRun,
    pub large: IngestRun,
}

/// Long enough that no request of the figure is answered while it is measured.
const NEVER_MS: u64 = 3_600_000;

pub async fn run(env: &Env, sizes: &Sizes, deployment: Deployment) -> anyhow::Result<Ingest> {
    let (workers, worker_concurrency) = deployment.shape(0, 1);
    let spec = StackSpec {
        name: "ingest".into(),
        deployment,
        sim: SimSpec { parallel: 1, latency_ms: NEVER_MS, max_queue: 16 },
        workers,
        worker_concurrency,
        metrics: false,
        worker_env: Vec::new(),
    };
    let mut stack = Stack::start(env, &spec).await?;
    let result = async {
        let small = one(env, sizes, &mut stack, sizes.ingest_lines / 10).await?;
        let large = one(env, sizes, &mut stack, sizes.ingest_lines).await?;
        anyhow::Ok(Ingest { small, large })
    }
    .await;
    stack.stop().await?;
    result
}

async fn one(env: &Env, sizes: &Sizes, stack: &mut Stack, lines: u64) -> anyhow::Result<IngestRun> {
    let input = env.run_dir.join(format!("ingest-{}-{lines}.jsonl", stack.deployment.as_str()));
    let bytes = crate::input::write_file(&input, lines, Some(sizes.ingest_line_bytes))?;
    tracing::info!(lines, mb = bytes as f64 / 1e6, "ingest: upload and validate");
    let gateway = Gateway::new(env.http.clone(), &stack.gateway_url);
    let proc = &stack.gateway;

    let before = proc.memory()?;
    proc.reset_peak()?;
    let started = Instant::now();
    let file = gateway.upload(&input).await;
    let upload = started.elapsed();
    let _ = std::fs::remove_file(&input);
    let file = file?;
    let upload_peak_mib = proc.memory()?.hwm_mib();

    proc.reset_peak()?;
    let created = Instant::now();
    let batch = gateway.create_batch(&file.id).await?;
    let (samples, batch) = watch(&gateway, None, &batch.id, created, sizes.batch_limit, |b| {
        b.status != BatchStatus::Validating
    })
    .await?;
    let validate_peak_mib = proc.memory()?.hwm_mib();
    anyhow::ensure!(
        batch.status == BatchStatus::InProgress,
        "the ingest batch ended {} instead of going in_progress: {:?}",
        batch.status.as_str(),
        batch.errors
    );
    let validate = samples.last().map(|s| s.at).context("no poll of the batch")?;

    proc.reset_peak()?;
    let published = format!("\"batch_id\":\"{}\"", batch.id);
    wait_published(stack, &published, sizes.batch_limit).await?;
    let publish_peak_mib = stack.gateway.memory()?.hwm_mib();
    // Nothing runs it (no workers); cancel so the gateway stops caring.
    let _ = gateway.cancel(&batch.id).await;
    let timings = GatewayTimings::read(&stack.gateway.log, &batch.id);
    Ok(IngestRun {
        lines,
        bytes,
        upload,
        validate,
        gateway: timings,
        before,
        upload_peak_mib,
        validate_peak_mib,
        publish_peak_mib,
    })
}

/// Waits for the gateway's "chunks published" line of the batch.
async fn wait_published(
    stack: &mut Stack,
    batch_field: &str,
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let log = std::fs::read_to_string(&stack.gateway.log).unwrap_or_default();
        if log.lines().any(|l| l.contains("chunks published") && l.contains(batch_field)) {
            return Ok(());
        }
        stack.gateway.ensure_alive()?;
        anyhow::ensure!(Instant::now() < deadline, "chunks not published after {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
