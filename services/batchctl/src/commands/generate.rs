//! `batchctl gen`: writes a synthetic batch input file.

use crate::Outcome;
use crate::generate::{DEFAULT_SYSTEM_PROMPT, GenEndpoint, GenSpec, write_batch};
use anyhow::Context;
use std::io::{BufWriter, ErrorKind, Write};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct GenArgs {
    /// How many requests.
    #[arg(long)]
    pub requests: u64,
    /// The model every request names.
    #[arg(long)]
    pub model: String,
    /// Output file; stdout when left out.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = GenEndpoint::Chat)]
    pub endpoint: GenEndpoint,
    /// The system prompt all requests share.
    #[arg(long, default_value = DEFAULT_SYSTEM_PROMPT, hide_default_value = true)]
    pub system_prompt: String,
    #[arg(long, default_value_t = 256)]
    pub max_tokens: u32,
    /// Same seed, same file.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn run(args: &GenArgs) -> anyhow::Result<Outcome> {
    let spec = GenSpec {
        requests: args.requests,
        model: args.model.clone(),
        endpoint: args.endpoint,
        system_prompt: args.system_prompt.clone(),
        max_tokens: args.max_tokens,
        seed: args.seed,
    };
    match &args.out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            write_batch(&spec, &mut BufWriter::with_capacity(1 << 20, file))
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {} requests to {}", args.requests, path.display());
        }
        None => {
            let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            match write_batch(&spec, &mut out).and_then(|()| out.flush()) {
                // `batchctl gen ... | head` closing the pipe early is not an error.
                Err(e) if e.kind() == ErrorKind::BrokenPipe => {}
                other => other.context("writing to stdout")?,
            }
        }
    }
    Ok(Outcome::Success)
}
