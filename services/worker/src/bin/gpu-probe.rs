//! `gpu-probe`: prints one GPU sample per line as JSON, to check the sampler on a real GPU host.
// The probe's whole point is to print its samples on stdout.
#![allow(clippy::print_stdout)]

use clap::Parser;
use nightshift_shared::measurements::SampleTrigger;
use nightshift_worker::gpu::{GpuSampler, host_name};
use std::time::Duration;

/// Samples the GPUs the way the worker does and prints each sample as one JSON line.
#[derive(Debug, Parser)]
#[command(name = "gpu-probe", version, about)]
struct Args {
    /// Milliseconds between samples.
    #[arg(long, default_value_t = 1000)]
    every_ms: u64,

    /// Samples to take before exiting.
    #[arg(long, default_value_t = 5)]
    count: u64,

    /// Ollama to ask (`/api/ps`) when NVML is unavailable.
    #[arg(long, env = "OLLAMA_URL")]
    ollama_url: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    nightshift_shared::telemetry::init("gpu-probe");
    let sampler =
        GpuSampler::new("gpu-probe", host_name(), args.ollama_url, reqwest::Client::new());
    let mut ticks = tokio::time::interval(Duration::from_millis(args.every_ms.max(1)));
    let mut missing = 0;
    for _ in 0..args.count {
        ticks.tick().await;
        match sampler.sample(SampleTrigger::Periodic, None).await {
            Some(sample) => println!("{}", serde_json::to_string(&sample)?),
            None => missing += 1,
        }
    }
    anyhow::ensure!(missing < args.count, "no VRAM source: not one sample could be taken");
    Ok(())
}
