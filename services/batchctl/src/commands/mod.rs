//! The subcommands, one module each, and the argument parsers they share.

pub mod cancel;
pub mod download;
pub mod generate;
pub mod list;
pub mod multi_batch;
pub mod report;
pub mod status;
pub mod submit;
pub mod wait;

use crate::{Cli, Outcome};
use nightshift_shared::openai::Endpoint;
use std::time::Duration;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Write a synthetic JSONL batch of N requests sharing one system prompt.
    Gen(generate::GenArgs),
    /// Upload a JSONL file and create a batch from it; prints the batch id.
    Submit(submit::SubmitArgs),
    /// Show a batch: status, counts and elapsed time.
    Status(status::StatusArgs),
    /// Follow a batch until it ends. Exit 0 if it completed, 1 if it failed, expired or was
    /// cancelled.
    Wait(wait::WaitArgs),
    /// Cancel a batch.
    Cancel(cancel::CancelArgs),
    /// Download a finished batch's output and error files.
    Download(download::DownloadArgs),
    /// List recent batches.
    List(list::ListArgs),
    /// Show a batch's performance metrics from the metrics service.
    Report(report::ReportArgs),
    /// Run N batches back to back and judge VRAM stability, throughput consistency, success
    /// rate and model persistence. Exit 0 if every criterion passed, 1 if one failed, 2 on
    /// errors or Ctrl-C. Writes multi_batch_results_<stamp>.json and an HTML report.
    MultiBatch(multi_batch::MultiBatchArgs),
}

/// Runs the chosen subcommand.
pub async fn run(cli: &Cli) -> anyhow::Result<Outcome> {
    match &cli.command {
        Command::Gen(args) => generate::run(args),
        Command::Submit(args) => submit::run(&cli.client()?, args).await,
        Command::Status(args) => status::run(&cli.client()?, args).await,
        Command::Wait(args) => wait::run(&cli.client()?, args).await,
        Command::Cancel(args) => cancel::run(&cli.client()?, args).await,
        Command::Download(args) => download::run(&cli.client()?, args).await,
        Command::List(args) => list::run(&cli.client()?, args).await,
        Command::Report(args) => report::run(&cli.metrics_client()?, args).await,
        Command::MultiBatch(args) => {
            multi_batch::run(&cli.client()?, &cli.metrics_client()?, args).await
        }
    }
}

/// `/v1/chat/completions`, `/v1/completions` or `/v1/embeddings`.
pub fn parse_endpoint(s: &str) -> Result<Endpoint, String> {
    Endpoint::parse(s).ok_or_else(|| {
        format!("expected one of {}", Endpoint::ALL.map(Endpoint::as_str).join(", "))
    })
}

/// `KEY=VALUE`.
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err("expected KEY=VALUE".to_owned()),
    }
}

/// `500ms`, `1s`, `2m`, `1h`, or a bare number of seconds; never zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: f64 =
        number.parse().map_err(|_| format!("'{s}' is not a duration like 500ms, 1s, 2m"))?;
    let secs = match unit {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(format!("unknown unit '{unit}': use ms, s, m or h")),
    };
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(format!("'{s}' must be a positive duration")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("3d").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn metadata_pairs_split_at_the_first_equals_sign() {
        assert_eq!(parse_key_value("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_key_value("=b").is_err());
        assert!(parse_key_value("ab").is_err());
    }
}
