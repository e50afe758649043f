//! `nightshift-bench`: parses flags, sets up tracing (to stderr), runs the bench and prints the
//! markdown report on stdout. Exits 1 if any figure could not be measured.

use clap::Parser;
use std::io::Write;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let config = nightshift_bench::Config::parse();
    nightshift_shared::telemetry::init("bench");
    let report = nightshift_bench::run(config).await?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(report.markdown().as_bytes())?;
    stdout.flush()?;
    Ok(if report.any_failed() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
