//! `nightshift-gateway`: parses config, sets up tracing, runs the gateway until Ctrl-C or SIGTERM.

use clap::Parser;
use nightshift_gateway::{Config, run};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    nightshift_shared::process::limit_malloc_arenas();
    let config = Config::parse();
    nightshift_shared::telemetry::init("gateway");
    let shutdown = CancellationToken::new();
    tokio::spawn(nightshift_shared::telemetry::cancel_on_signal(shutdown.clone()));
    run(config, shutdown).await
}
