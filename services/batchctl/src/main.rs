//! The `batchctl` binary: parses the command line and hands it to the library.

// The CLI's job is to print.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use clap::Parser;
use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = batchctl::Cli::parse();
    match batchctl::run(cli).await {
        Ok(outcome) => outcome.into(),
        Err(e) => batchctl::report_error(&e),
    }
}
