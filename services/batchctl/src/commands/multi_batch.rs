//! `batchctl multi-batch`: the test plan's multi-batch stability test. Runs N batches back to
//! back through the gateway, reads VRAM around each from the metrics service, then has the
//! metrics service judge the run and writes the results JSON and an HTML report.
//!
//! Exits 0 if every criterion passed, 1 if one failed (or a batch did not complete), 2 on a
//! usage, connection or server error, or when interrupted with Ctrl-C.

use super::{parse_duration, parse_endpoint, wait::wait_for_batch};
use crate::multibatch::interrupt::Interrupts;
use crate::multibatch::results::{self, BatchResult, RunResults, VramPoint, Written, gb};
use crate::multibatch::view;
use crate::multibatch::{summary, vram};
use crate::progress::Progress;
use crate::{Client, Outcome, format};
use anyhow::Context;
use nightshift_shared::openai::{BatchStatus, Endpoint};
use nightshift_shared::reports::{BatchMetrics, MultiBatchReport, Thresholds};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often the metrics service is asked whether it has seen a batch end.
const METRICS_POLL: Duration = Duration::from_millis(250);
/// How long an interrupted run waits for a cancelled batch to stop, and for the report.
const INTERRUPTED_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, clap::Args)]
pub struct MultiBatchArgs {
    /// How many batches to run, one after the other (at most 100, the report's limit).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub batches: u64,
    /// The JSONL input file each batch is made from.
    #[arg(long)]
    pub input: PathBuf,
    /// The endpoint every request of the batches calls.
    #[arg(long, default_value = "/v1/chat/completions", value_parser = parse_endpoint)]
    pub endpoint: Endpoint,
    /// Pause between batches (0s for none).
    #[arg(long, default_value = "10s", value_parser = parse_pause)]
    pub pause: Duration,
    /// Directory for multi_batch_results_<stamp>.json and multi_batch_report_<stamp>.html.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Pass only if VRAM grows by less than this from the first batch's start to the last's end.
    #[arg(long, default_value_t = 0.5, value_parser = parse_threshold)]
    pub max_vram_delta_gb: f64,
    /// Pass only if the batches' throughput varies by less than this: (max − min) / max × 100.
    #[arg(long, default_value_t = 10.0, value_parser = parse_threshold)]
    pub max_variance_pct: f64,
    /// Pass only if every batch's success rate is at least this.
    #[arg(long, default_value_t = 100.0, value_parser = parse_threshold)]
    pub min_success_pct: f64,
    /// On Ctrl-C, cancel the running batch without asking (otherwise asked on a terminal, and
    /// left running elsewhere).
    #[arg(long)]
    pub cancel_on_interrupt: bool,
    /// How often to poll the gateway for a batch's progress.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub poll: Duration,
    /// How often to sample VRAM for the report's timeline.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub vram_every: Duration,
    /// How long to wait for the metrics service to see a batch end (telemetry is asynchronous).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub metrics_wait: Duration,
}

impl MultiBatchArgs {
    fn thresholds(&self) -> Thresholds {
        Thresholds {
            max_vram_delta_gb: self.max_vram_delta_gb,
            max_variance_pct: self.max_variance_pct,
            min_success_pct: self.min_success_pct,
        }
    }
}

/// A duration that may be zero.
fn parse_pause(s: &str) -> Result<Duration, String> {
    match s.trim().trim_end_matches(['m', 's', 'h']) {
        "0" | "0." | "0.0" => Ok(Duration::ZERO),
        _ => parse_duration(s),
    }
}

fn parse_threshold(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("'{s}' is not a non-negative number"))
}

/// Where one batch left the run.
enum Step {
    Next,
    /// The batch did not complete, or Ctrl-C: no more batches.
    Stop,
}

/// The clients and settings one run uses.
struct Run<'a> {
    gateway: &'a Client,
    metrics: &'a Client,
    args: &'a MultiBatchArgs,
    interrupts: Interrupts,
}

pub async fn run(
    gateway: &Client,
    metrics: &Client,
    args: &MultiBatchArgs,
) -> anyhow::Result<Outcome> {
    preflight(metrics, args).await?;
    let started = format::now_unix();
    let paths = results::paths(&args.out, &format::file_stamp(started));
    let mut results = RunResults {
        timestamp: format::iso8601(started),
        num_batches: args.batches,
        input_file: args.input.display().to_string(),
        endpoint: args.endpoint.as_str().to_owned(),
        gateway_url: gateway.base_url().to_owned(),
        metrics_url: metrics.base_url().to_owned(),
        thresholds: args.thresholds(),
        interrupted: false,
        results: Vec::new(),
        vram_timeline: Vec::new(),
        report: None,
        pass: false,
        failures: Vec::new(),
    };
    let run = Run { gateway, metrics, args, interrupts: Interrupts::watch() };
    let sampler = vram::Sampler::start(metrics.clone(), args.vram_every);
    let mut error = None;
    for n in 1..=args.batches {
        match run.batch(n, &mut results.results).await {
            Ok(Step::Next) => {}
            Ok(Step::Stop) => break,
            Err(e) => {
                error = Some(e);
                break;
            }
        }
        if n < args.batches && !args.pause.is_zero() {
            println!("pausing {} before the next batch", format::duration(args.pause));
            if run.or_interrupt(tokio::time::sleep(args.pause)).await.is_none() {
                break;
            }
        }
    }
    results.interrupted = run.interrupts.interrupted();
    results.vram_timeline = sampler.finish().await;
    if results.results.is_empty() {
        return match error {
            Some(e) => Err(e),
            None => {
                eprintln!("interrupted before any batch was created: nothing to report");
                Ok(Outcome::Interrupted)
            }
        };
    }
    if let Err(e) = run.judge(&mut results).await {
        error.get_or_insert(e);
    }
    results::write(&results, &paths)?;
    println!("\n{}", summary::render(&results));
    print_paths(&paths);
    if let Some(e) = error {
        return Err(e.context(format!(
            "multi-batch run stopped (results so far in {})",
            paths.json.display()
        )));
    }
    if results.interrupted {
        eprintln!("interrupted: the run stopped early; exit code 2");
        return Ok(Outcome::Interrupted);
    }
    Ok(if results.pass { Outcome::Success } else { Outcome::CheckFailed })
}

/// Fails before any batch runs if the input, the output directory or the metrics service (which
/// judges the run) is not there.
async fn preflight(metrics: &Client, args: &MultiBatchArgs) -> anyhow::Result<()> {
    let input = &args.input;
    let meta = std::fs::metadata(input)
        .with_context(|| format!("input file {}: create one with batchctl gen", input.display()))?;
    anyhow::ensure!(meta.is_file(), "input file {} is not a file", input.display());
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating the output directory {}", args.out.display()))?;
    metrics.gpus().await.context("checking the metrics service, which judges the run")?;
    Ok(())
}

impl Run<'_> {
    /// `fut`, or `None` at Ctrl-C.
    async fn or_interrupt<T>(&self, fut: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            () = self.interrupts.cancelled() => None,
            value = fut => Some(value),
        }
    }

    /// Runs batch `n` to its end and records it in `out`.
    async fn batch(&self, n: u64, out: &mut Vec<BatchResult>) -> anyhow::Result<Step> {
        let (gateway, args) = (self.gateway, self.args);
        println!("\n=== Batch {n}/{} ===", args.batches);
        let before = match self.or_interrupt(vram::read(self.metrics)).await {
            None => return Ok(Step::Stop),
            Some(Ok(reading)) => reading,
            Some(Err(e)) => {
                eprintln!("warning: reading VRAM before batch {n}: {e}");
                None
            }
        };
        println!("VRAM before: {}", vram_text(before));
        let Some(file) = self.or_interrupt(super::submit::upload(gateway, &args.input)).await
        else {
            return Ok(Step::Stop);
        };
        let file = file.with_context(|| format!("uploading {}", args.input.display()))?;
        let metadata = BTreeMap::from([
            ("test_batch_num".to_owned(), n.to_string()),
            ("test_type".to_owned(), "multi_batch".to_owned()),
        ]);
        let Some(batch) =
            self.or_interrupt(gateway.create_batch(&file.id, args.endpoint, &metadata)).await
        else {
            return Ok(Step::Stop);
        };
        let batch = batch.context("creating the batch")?;
        println!("created {} ({})", batch.id, batch.status.as_str());
        out.push(BatchResult::new(&batch, n, before));
        let Some(result) = out.last_mut() else { return Ok(Step::Stop) };

        let mut progress = Progress::for_stdout();
        let waited =
            self.or_interrupt(wait_for_batch(gateway, &batch.id, args.poll, &mut progress)).await;
        drop(progress);
        let batch = match waited {
            None => {
                self.interrupted_batch(result).await;
                return Ok(Step::Stop);
            }
            Some(waited) => waited.with_context(|| format!("following batch {}", batch.id))?,
        };
        result.update_from_gateway(&batch);

        let Some(seen) =
            self.or_interrupt(settled_metrics(self.metrics, &batch.id, args.metrics_wait)).await
        else {
            return Ok(Step::Stop);
        };
        match seen {
            Some(metrics) => result.apply_metrics(metrics),
            None => eprintln!(
                "warning: after {}, the metrics service has not seen batch {} end; its figures \
                 for it may be missing",
                format::duration(args.metrics_wait),
                batch.id
            ),
        }
        let after =
            vram::read_after(self.metrics, result.ended_at_ms, METRICS_POLL, args.metrics_wait);
        let Some(after) = self.or_interrupt(after).await else { return Ok(Step::Stop) };
        result.set_vram_after(after);

        println!("{}", format::final_report(&batch, format::now_unix()));
        println!(
            "Batch {n}: {} | {} | VRAM: {} → {} ({})",
            summary::span(result.elapsed_seconds),
            summary::rps(result.rate_per_second),
            summary::gb(result.vram_before_gb),
            summary::gb(result.vram_after_gb),
            summary::signed_gb(result.vram_delta_gb),
        );
        if batch.status == BatchStatus::Completed {
            Ok(Step::Next)
        } else {
            println!("batch {n} ended {}: no more batches are started", batch.status.as_str());
            Ok(Step::Stop)
        }
    }

    /// Ctrl-C while `result`'s batch runs: cancel it if the user wants, and record where it is.
    async fn interrupted_batch(&self, result: &mut BatchResult) {
        let id = result.batch_id.clone();
        if !self.interrupts.confirm_cancel(&id, self.args.cancel_on_interrupt).await {
            eprintln!(
                "batch {id} keeps running on the gateway; cancel it with: batchctl cancel {id}"
            );
            if let Ok(batch) = self.gateway.get_batch(&id).await {
                result.update_from_gateway(&batch);
            }
            return;
        }
        if let Err(e) = self.gateway.cancel_batch(&id).await {
            eprintln!("warning: cancelling {id} failed: {e}; cancel it with: batchctl cancel {id}");
            return;
        }
        // Wait a little for the workers to stop, so the results show the batch as it ended.
        let deadline = Instant::now() + INTERRUPTED_WAIT;
        while let Ok(batch) = self.gateway.get_batch(&id).await {
            result.update_from_gateway(&batch);
            if batch.status.is_terminal() || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(METRICS_POLL).await;
        }
        eprintln!("batch {id}: {}", result.status);
        if result.is_final()
            && let Ok(Some(metrics)) = tokio::time::timeout(
                INTERRUPTED_WAIT,
                settled_metrics(self.metrics, &id, INTERRUPTED_WAIT),
            )
            .await
        {
            result.apply_metrics(metrics);
        }
    }

    /// Refreshes each batch's metrics and fetches the report over the batches that ended;
    /// sets `report`, `pass` and `failures`.
    async fn judge(&self, results: &mut RunResults) -> anyhow::Result<()> {
        let interrupted = results.interrupted;
        let fetch = async {
            for b in &mut results.results {
                // A VRAM sample after the batch's end may have come in since it was first read.
                if let Ok(metrics) = self.metrics.batch_metrics(&b.batch_id).await {
                    b.apply_metrics(metrics);
                }
            }
            let ended: Vec<String> = results
                .results
                .iter()
                .filter(|b| b.is_final())
                .map(|b| b.batch_id.clone())
                .collect();
            if ended.is_empty() {
                return Ok(None);
            }
            self.metrics
                .multi_batch_report(&ended, &view::query(&self.args.thresholds()))
                .await
                .map(Some)
        };
        let fetched = if interrupted {
            tokio::time::timeout(INTERRUPTED_WAIT, fetch).await.unwrap_or(Ok(None))
        } else {
            fetch.await
        };
        let outcome = fetched.context("fetching the multi-batch report from the metrics service");
        let report: MultiBatchReport = match &outcome {
            Ok(Some(value)) => view::parse(value),
            _ => MultiBatchReport::default(),
        };
        let fetched_report = matches!(outcome, Ok(Some(_)));
        results.failures = report.failures.clone();
        if !fetched_report {
            results
                .failures
                .push("no multi-batch report from the metrics service: nothing judged".into());
        }
        if let Some(reason) = summary::not_run_reason(results) {
            results.failures.push(reason);
        }
        results.pass = fetched_report && report.pass && results.failures.is_empty();
        results.report = outcome.as_ref().ok().cloned().flatten();
        outcome.map(|_| ())
    }
}

/// The batch's metrics once the metrics service has seen it end, polling up to `within`;
/// `None` if it did not in time (or does not know the batch).
async fn settled_metrics(
    metrics: &Client,
    id: &str,
    within: Duration,
) -> Option<serde_json::Value> {
    let deadline = Instant::now() + within;
    loop {
        let value = metrics.batch_metrics(id).await.ok();
        let settled =
            value.as_ref().is_some_and(|v| view::is_final(&view::parse::<BatchMetrics>(v)));
        if settled {
            return value;
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(METRICS_POLL).await;
    }
}

fn vram_text(reading: Option<VramPoint>) -> String {
    reading.map_or_else(
        || "unknown (no GPU has reported VRAM to the metrics service yet)".into(),
        |p| format!("{:.2} GB", gb(p.used_bytes)),
    )
}

fn print_paths(paths: &Written) {
    println!("\nresults: {}", paths.json.display());
    println!("report:  {}", paths.html.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_may_be_zero_but_thresholds_not_negative() {
        assert_eq!(parse_pause("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_pause("0"), Ok(Duration::ZERO));
        assert_eq!(parse_pause("10s"), Ok(Duration::from_secs(10)));
        assert!(parse_pause("soon").is_err());
        assert_eq!(parse_threshold("0.5"), Ok(0.5));
        assert!(parse_threshold("-1").is_err());
        assert!(parse_threshold("NaN").is_err());
    }
}
