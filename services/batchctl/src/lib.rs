//! `batchctl`, the Nightshift CLI: generate, submit, watch, cancel, download and list batches on the
//! gateway's OpenAI-compatible Files and Batches API.
//!
//! # Layout
//! - [`client`]: a typed [`Client`] over the gateway's HTTP API (and the metrics service's JSON).
//! - [`commands`]: one module per subcommand; each has its clap `Args` and a `run`.
//! - [`progress`]: the live progress of `wait`: a bar on a terminal, periodic lines otherwise.
//! - [`generate`]: synthetic batch input files.
//! - [`multibatch`]: the multi-batch stability test's results file, summary and HTML report.
//! - [`format`]: how batches, durations and times read.
//!
//! # Exit codes
//! 0: success. 1: a checked criterion failed (`wait`: the batch ended other than `completed`;
//! `multi-batch`: a stability criterion failed). 2: usage, connection or server error, with a
//! message saying what to do, or a `multi-batch` run interrupted with Ctrl-C.

// The CLI's job is to print: results to stdout, progress notes and errors to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

pub mod client;
pub mod commands;
pub mod format;
pub mod generate;
pub mod multibatch;
pub mod progress;

use clap::Parser;
pub use client::{Client, ClientError};
use commands::Command;
use secrecy::SecretString;
use std::process::ExitCode;

/// Command-line options shared by every subcommand.
#[derive(Debug, Parser)]
#[command(
    name = "batchctl",
    version,
    about = "The Nightshift CLI: run OpenAI-style batches on the Nightshift gateway.",
    after_help = "Exit codes: 0 success; 1 a checked criterion failed (wait: the batch ended \
                  failed, expired or cancelled; multi-batch: a stability criterion failed); 2 \
                  usage, connection or server error, or multi-batch interrupted."
)]
pub struct Cli {
    /// The gateway's base URL (a trailing /v1 is accepted).
    #[arg(long, global = true, env = "NIGHTSHIFT_URL", default_value = "http://localhost:4080")]
    pub url: String,

    /// API key sent as `Authorization: Bearer`.
    #[arg(long, global = true, env = "NIGHTSHIFT_API_KEY", hide_env_values = true)]
    pub api_key: Option<SecretString>,

    /// The metrics service's base URL, for `report` and `multi-batch`.
    #[arg(
        long,
        global = true,
        env = "NIGHTSHIFT_METRICS_URL",
        default_value = "http://localhost:4081"
    )]
    pub metrics_url: String,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// A client for the gateway.
    pub fn client(&self) -> Result<Client, ClientError> {
        Client::new(&self.url, self.api_key.clone())
    }

    /// A client for the metrics service.
    pub fn metrics_client(&self) -> Result<Client, ClientError> {
        Client::metrics(&self.metrics_url, self.api_key.clone())
    }
}

/// How a command that ran to its end turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// A checked criterion failed, such as a batch that did not complete.
    CheckFailed,
    /// Ctrl-C stopped the command before it could judge anything (`multi-batch`).
    Interrupted,
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::CheckFailed => ExitCode::from(1),
            Outcome::Interrupted => ExitCode::from(EXIT_ERROR),
        }
    }
}

/// Exit code of a command that could not run to its end.
pub const EXIT_ERROR: u8 = 2;

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    commands::run(&cli).await
}

/// Prints `error: ...` (and a hint where there is one) for a failed command; returns exit code 2.
pub fn report_error(e: &anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    if let Some(hint) = e.downcast_ref::<ClientError>().and_then(ClientError::hint) {
        eprintln!("hint: {hint}");
    }
    ExitCode::from(EXIT_ERROR)
}
