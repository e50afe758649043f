//! `nightshift-metrics`: parses config, sets up tracing, runs the metrics service until Ctrl-C or
//! SIGTERM.

use clap::Parser;
use nightshift_metrics::{Config, run};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    nightshift_shared::process::limit_malloc_arenas();
    let config = Config::parse();
    nightshift_shared::telemetry::init("metrics");
    let shutdown = CancellationToken::new();
    tokio::spawn(nightshift_shared::telemetry::cancel_on_signal(shutdown.clone()));
    run(config, shutdown).await
}
