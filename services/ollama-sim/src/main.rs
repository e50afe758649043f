//! `ollama-sim`: serves the Ollama API simulator until Ctrl-C or SIGTERM.

use anyhow::Context;
use clap::Parser;
use ollama_sim::SimConfig;
use tokio_util::sync::CancellationToken;

/// A simulator of Ollama's HTTP API (no real model: deterministic pseudo-text).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on (real Ollama's default port is 11434).
    #[arg(long, env = "OLLAMA_SIM_ADDR", default_value = "127.0.0.1:11434")]
    addr: String,
    #[command(flatten)]
    config: SimConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    nightshift_shared::telemetry::init("ollama-sim");
    args.config.validate().context("invalid simulator settings")?;
    let listener = tokio::net::TcpListener::bind(&args.addr).await.with_context(|| {
        format!("cannot listen on {}: set OLLAMA_SIM_ADDR or --addr", args.addr)
    })?;
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::warn!(
        %addr,
        config = ?args.config,
        "this is the Ollama SIMULATOR, not a real model: answers are deterministic pseudo-text"
    );
    let token = CancellationToken::new();
    tokio::spawn(nightshift_shared::telemetry::cancel_on_signal(token.clone()));
    ollama_sim::serve(listener, args.config, token.cancelled_owned()).await
}
