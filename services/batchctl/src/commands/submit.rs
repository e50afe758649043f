//! `batchctl submit`: uploads a JSONL file, creates a batch over it, and optionally waits.

use super::{parse_duration, parse_endpoint, parse_key_value};
use crate::{Client, ClientError, Outcome};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nightshift_shared::openai::{Endpoint, FileObject};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

const UPLOAD_TEMPLATE: &str =
    "uploading [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, ETA {eta})";

#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// The JSONL input file, one request per line.
    pub file: PathBuf,
    /// The endpoint every request of the batch calls.
    #[arg(long, default_value = "/v1/chat/completions", value_parser = parse_endpoint)]
    pub endpoint: Endpoint,
    /// Metadata to attach to the batch; repeat for several pairs.
    #[arg(long = "metadata", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub metadata: Vec<(String, String)>,
    /// Follow the batch until it ends, as `batchctl wait` does (and exit as it does).
    #[arg(long)]
    pub wait: bool,
    /// How often --wait polls the gateway.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub poll: Duration,
}

pub async fn run(client: &Client, args: &SubmitArgs) -> anyhow::Result<Outcome> {
    let file = upload(client, &args.file).await?;
    let metadata: BTreeMap<String, String> = args.metadata.iter().cloned().collect();
    let batch = client.create_batch(&file.id, args.endpoint, &metadata).await?;
    eprintln!("created {} ({})", batch.id, batch.status.as_str());
    println!("{}", batch.id);
    if args.wait {
        super::wait::follow(client, &batch.id, args.poll).await
    } else {
        Ok(Outcome::Success)
    }
}

/// Uploads `path` for a batch, with a byte progress bar when stderr is a terminal.
pub async fn upload(client: &Client, path: &Path) -> Result<FileObject, ClientError> {
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(UPLOAD_TEMPLATE) {
            bar.set_style(style.progress_chars("=> "));
        }
        if let Ok(meta) = tokio::fs::metadata(path).await {
            bar.set_length(meta.len());
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let sent = bar.clone();
    let result = client.upload_file_with_progress(path, move |n| sent.inc(n)).await;
    bar.finish_and_clear();
    let file = result?;
    eprintln!("uploaded {} as {} ({} bytes)", path.display(), file.id, file.bytes);
    Ok(file)
}
