//! The measurements, one module per figure, each on a stack of its own so one cannot leave
//! work or memory behind for the next.

pub mod ceiling;
pub mod efficiency;
pub mod ingest;
pub mod real;
pub mod stability;

use crate::api::{Gateway, sim_state};
use crate::cpu::{CpuSnapshot, CpuUse};
use crate::stack::Stack;
use crate::timeline::{Moments, Sample, watch};
use anyhow::Context;
use nightshift_shared::openai::{Batch, BatchStatus};
use std::path::Path;
use std::time::{Duration, Instant};

/// One batch run from upload to `completed`.
#[derive(Debug, Clone)]
pub struct BatchRun {
    pub batch: Batch,
    pub upload: Duration,
    pub samples: Vec<Sample>,
    pub moments: Moments,
    /// CPU used by each process, and the rest of the machine, from create to the end.
    pub cpu: CpuUse,
}

impl BatchRun {
    pub fn total(&self) -> u64 {
        self.batch.request_counts.total
    }

    /// Create to completed (output file written), as first seen by a poll.
    pub fn elapsed(&self) -> Option<Duration> {
        self.moments.completed
    }

    /// Requests per second from create to completed.
    pub fn rate(&self) -> Option<f64> {
        crate::stats::rate(self.total(), self.elapsed()?)
    }
}

/// Uploads `input`, creates a batch over it and polls it (and the simulator) until it ends;
/// fails unless it ends `completed` with every request a success.
pub async fn run_batch(
    http: &reqwest::Client,
    stack: &Stack,
    input: &Path,
    limit: Duration,
) -> anyhow::Result<BatchRun> {
    let gateway = Gateway::new(http.clone(), &stack.gateway_url);
    let started = Instant::now();
    let file = gateway.upload(input).await?;
    let upload = started.elapsed();
    let base = sim_state(http, &stack.sim_url).await?.counters.completed;
    let cpu_before = CpuSnapshot::take(&stack.all_procs(), stack.database_name());
    let created = Instant::now();
    let batch = gateway.create_batch(&file.id).await?;
    let sim = Some((http, stack.sim_url.as_str(), base));
    let (samples, batch) = watch(&gateway, sim, &batch.id, created, limit, |_| false)
        .await
        .with_context(|| format!("running batch {}", batch.id))?;
    let cpu = cpu_before.used_until(
        &CpuSnapshot::take(&stack.all_procs(), stack.database_name()),
        created.elapsed(),
    );
    anyhow::ensure!(
        batch.status == BatchStatus::Completed && batch.request_counts.failed == 0,
        "batch {} ended {} with {} of {} requests failed (see {})",
        batch.id,
        batch.status.as_str(),
        batch.request_counts.failed,
        batch.request_counts.total,
        stack.gateway.log.display()
    );
    let moments = Moments::from_samples(&samples, batch.request_counts.total);
    let csv = stack.gateway.log.with_file_name(format!("{}.csv", batch.id));
    if let Err(e) = std::fs::write(&csv, crate::timeline::csv(&samples)) {
        tracing::warn!(error = %e, path = %csv.display(), "cannot write the batch's timeline");
    }
    Ok(BatchRun { batch, upload, samples, moments, cpu })
}
