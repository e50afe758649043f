//! `batchctl download`: a batch's output and error files, streamed to disk.

use crate::{Client, Outcome};
use anyhow::{Context, bail};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct DownloadArgs {
    pub batch_id: String,
    /// Directory to write `<batch_id>_output.jsonl` and `<batch_id>_errors.jsonl` into.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
}

pub async fn run(client: &Client, args: &DownloadArgs) -> anyhow::Result<Outcome> {
    let batch = client.get_batch(&args.batch_id).await?;
    let files: Vec<(&str, &str)> =
        [(batch.output_file_id.as_deref(), "output"), (batch.error_file_id.as_deref(), "errors")]
            .into_iter()
            .filter_map(|(id, kind)| id.map(|id| (id, kind)))
            .collect();
    if files.is_empty() {
        let next = if batch.status.is_terminal() {
            String::new()
        } else {
            format!(": wait for it to finish with `batchctl wait {}`", batch.id)
        };
        bail!(
            "batch {} is {} and has no output or error file{next}",
            batch.id,
            batch.status.as_str()
        );
    }
    tokio::fs::create_dir_all(&args.out)
        .await
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    for (file_id, kind) in files {
        let path = args.out.join(format!("{}_{kind}.jsonl", batch.id));
        let done = client.file_content_to(file_id, &path).await?;
        println!("{}  {} lines  {} bytes", path.display(), done.lines, done.bytes);
    }
    Ok(Outcome::Success)
}
