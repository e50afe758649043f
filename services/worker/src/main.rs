//! `nightshift-worker`: parses config, sets up tracing, works until Ctrl-C or SIGTERM.

use clap::Parser;
use nightshift_worker::{Config, run};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    nightshift_shared::process::limit_malloc_arenas();
    let config = Config::parse();
    nightshift_shared::telemetry::init("worker");
    let shutdown = CancellationToken::new();
    tokio::spawn(nightshift_shared::telemetry::cancel_on_signal(shutdown.clone()));
    run(config, shutdown).await
}
