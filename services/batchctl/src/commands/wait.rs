//! `batchctl wait`: follows a batch to its end with live progress.
//!
//! Exits 0 if the batch completed, 1 if it failed, expired or was cancelled.

use super::parse_duration;
use crate::progress::Progress;
use crate::{Client, ClientError, Outcome, format};
use nightshift_shared::openai::{Batch, BatchStatus};
use std::time::{Duration, Instant};

/// How long polls may keep failing (gateway restarting, network blip) before `wait` gives up.
const MAX_OUTAGE: Duration = Duration::from_secs(300);

#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    pub batch_id: String,
    /// How often to poll the gateway.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub poll: Duration,
}

pub async fn run(client: &Client, args: &WaitArgs) -> anyhow::Result<Outcome> {
    follow(client, &args.batch_id, args.poll).await
}

/// Waits for the batch with progress on stdout, prints the final report, and judges it.
pub async fn follow(client: &Client, id: &str, poll: Duration) -> anyhow::Result<Outcome> {
    let mut progress = Progress::for_stdout();
    let batch = wait_for_batch(client, id, poll, &mut progress).await?;
    drop(progress);
    println!("{}", format::final_report(&batch, format::now_unix()));
    Ok(outcome(&batch))
}

/// Success only for a completed batch.
pub fn outcome(batch: &Batch) -> Outcome {
    if batch.status == BatchStatus::Completed { Outcome::Success } else { Outcome::CheckFailed }
}

/// Polls every `poll` until the batch reaches a final status, and returns it. Failed polls are
/// retried (and reported through `progress`) for up to [`MAX_OUTAGE`] when they may be transient.
pub async fn wait_for_batch(
    client: &Client,
    id: &str,
    poll: Duration,
    progress: &mut Progress,
) -> Result<Batch, ClientError> {
    let mut last_ok = Instant::now();
    loop {
        match client.get_batch(id).await {
            Ok(batch) => {
                last_ok = Instant::now();
                progress.update(&batch);
                if batch.status.is_terminal() {
                    progress.finish();
                    return Ok(batch);
                }
            }
            Err(e) if e.is_transient() && last_ok.elapsed() < MAX_OUTAGE => {
                progress.warn(&format!("{e} (retrying)"));
            }
            Err(e) => {
                progress.finish();
                return Err(e);
            }
        }
        tokio::time::sleep(poll).await;
    }
}
