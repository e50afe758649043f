//! `nightshift`: the whole product in one process (`nightshift standalone`).

use clap::Parser;
use nightshift::{Cli, run};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    nightshift_shared::process::limit_malloc_arenas();
    let cli = Cli::parse();
    nightshift_shared::telemetry::init("nightshift");
    let shutdown = CancellationToken::new();
    tokio::spawn(nightshift_shared::telemetry::cancel_on_signal(shutdown.clone()));
    run(cli, shutdown).await
}
