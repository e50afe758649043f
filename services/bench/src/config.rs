//! The bench's flags, and the sizes each figure is measured at (full or `--quick`).

use clap::{Parser, ValueEnum};
use secrecy::SecretString;
use std::path::PathBuf;
use std::time::Duration;

/// Measures the whole stack, side by side in one run, and prints a markdown report.
#[derive(Debug, Clone, Parser)]
#[command(name = "nightshift-bench", version, about)]
pub struct Config {
    /// Small sizes: a smoke test of the bench itself (seconds), not figures to record.
    #[arg(long)]
    pub quick: bool,

    /// Folder holding nightshift-gateway, nightshift-worker, nightshift-metrics and ollama-sim.
    #[arg(long, env = "NIGHTSHIFT_BIN_DIR", default_value = "target/release")]
    pub bin_dir: PathBuf,

    /// Postgres server (any database on it) where each figure gets a fresh database, dropped
    /// at the end.
    #[arg(
        long,
        env = "BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub database_url: SecretString,

    /// The nats-server binary; each figure starts its own on a free port with its own store.
    #[arg(long, env = "NATS_SERVER_BIN", default_value = "/usr/sbin/nats-server")]
    pub nats_server: PathBuf,

    /// Where logs of every process go (default: target/bench/<timestamp>).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,

    /// Worker processes in every stack.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,

    /// Requests in flight per worker for the pipeline ceiling (the simulator answers at once).
    #[arg(long, default_value_t = 32)]
    pub ceiling_concurrency: usize,

    /// Back-to-back batches in the stability figure (default 5).
    #[arg(long)]
    pub stability_batches: Option<usize>,

    /// RUST_LOG of every service the bench starts (their logs are in the run dir).
    #[arg(long, default_value = "info")]
    pub service_log: String,

    /// Which figures to measure, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Figure>,

    /// Which deployments to measure each figure on, comma-separated, side by side in one run.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_values_t = [Deployment::Distributed, Deployment::Standalone]
    )]
    pub deployments: Vec<Deployment>,
}

/// How Nightshift is deployed for a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Deployment {
    /// Gateway, metrics and N workers as separate processes on nats-server and Postgres.
    Distributed,
    /// One `nightshift standalone` process: in-process queue, SQLite files.
    Standalone,
}

impl Deployment {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Distributed => "distributed",
            Self::Standalone => "standalone",
        }
    }

    /// Workers and requests in flight per worker for a figure measured on `workers` ×
    /// `concurrency` distributed: standalone runs one worker with as many in flight as all of
    /// them together (at least one: its worker is always there).
    pub fn shape(self, workers: usize, concurrency: usize) -> (usize, usize) {
        match self {
            Self::Distributed => (workers, concurrency),
            Self::Standalone => (1, (workers * concurrency).max(1)),
        }
    }
}

/// The figures the bench can measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Figure {
    Efficiency,
    Ceiling,
    Ingest,
    Stability,
    /// Efficiency on a real model server (scripts/real-model.sh).
    Real,
}

impl Config {
    pub fn wants(&self, figure: Figure) -> bool {
        self.only.is_empty() || self.only.contains(&figure)
    }

    /// The deployments asked for, each once, distributed first.
    pub fn deployments(&self) -> Vec<Deployment> {
        let mut deployments = self.deployments.clone();
        deployments.sort();
        deployments.dedup();
        deployments
    }

    pub fn sizes(&self) -> Sizes {
        let sizes = if self.quick { Sizes::quick() } else { Sizes::full() };
        Sizes {
            stability_batches: self.stability_batches.unwrap_or(sizes.stability_batches),
            ..sizes
        }
    }
}

/// How big each measurement is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sizes {
    /// The backend's parallel slots and service time for the efficiency figure.
    pub efficiency_slots: usize,
    pub efficiency_latency_ms: u64,
    /// Requests sent by the direct client, and in the pipeline's batch.
    pub efficiency_requests: u64,
    pub ceiling_requests: u64,
    pub ingest_lines: u64,
    /// Average bytes per line of the ingest file.
    pub ingest_line_bytes: usize,
    pub stability_batches: usize,
    pub stability_requests: u64,
    pub stability_slots: usize,
    pub stability_latency_ms: u64,
    /// The real model server's slots, the requests of its figure and their token limit.
    pub real_slots: usize,
    pub real_requests: u64,
    pub real_max_tokens: u64,
    /// The longest the real model's batch may take (it answers a few requests a second).
    pub real_batch_limit: Duration,
    /// The longest one batch may take before the figure fails.
    pub batch_limit: Duration,
}

impl Sizes {
    /// What the issue asks for.
    pub fn full() -> Self {
        Self {
            efficiency_slots: 8,
            efficiency_latency_ms: 50,
            efficiency_requests: 5_000,
            ceiling_requests: 50_000,
            ingest_lines: 170_000,
            ingest_line_bytes: 900,
            stability_batches: 5,
            stability_requests: 5_000,
            stability_slots: 8,
            stability_latency_ms: 20,
            real_slots: 4,
            real_requests: 300,
            real_max_tokens: 8,
            real_batch_limit: Duration::from_secs(1800),
            batch_limit: Duration::from_secs(300),
        }
    }

    /// Enough to exercise every code path in seconds.
    pub fn quick() -> Self {
        Self {
            efficiency_requests: 200,
            ceiling_requests: 2_000,
            ingest_lines: 5_000,
            stability_requests: 200,
            real_requests: 40,
            real_batch_limit: Duration::from_secs(600),
            batch_limit: Duration::from_secs(120),
            ..Self::full()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        Config::try_parse_from(std::iter::once("nightshift-bench").chain(args.iter().copied()))
            .unwrap()
    }

    #[test]
    fn both_deployments_by_default_each_once_in_a_fixed_order() {
        use Deployment::*;
        assert_eq!(parse(&[]).deployments(), vec![Distributed, Standalone]);
        assert_eq!(parse(&["--deployments", "standalone"]).deployments(), vec![Standalone]);
        let both = parse(&["--deployments", "standalone,distributed,standalone"]);
        assert_eq!(both.deployments(), vec![Distributed, Standalone]);
        assert!(Config::try_parse_from(["nightshift-bench", "--deployments", "docker"]).is_err());
    }

    #[test]
    fn standalone_runs_all_distributed_slots_in_one_worker() {
        assert_eq!(Deployment::Distributed.shape(2, 32), (2, 32));
        assert_eq!(Deployment::Standalone.shape(2, 32), (1, 64));
        assert_eq!(Deployment::Standalone.shape(2, 4), (1, 8));
        // Ingest has no workers distributed; standalone's worker is there anyway.
        assert_eq!(Deployment::Distributed.shape(0, 1), (0, 1));
        assert_eq!(Deployment::Standalone.shape(0, 1), (1, 1));
    }

    #[test]
    fn only_still_selects_figures() {
        let c = parse(&["--only", "ceiling,ingest"]);
        assert!(c.wants(Figure::Ceiling) && c.wants(Figure::Ingest));
        assert!(!c.wants(Figure::Efficiency) && !c.wants(Figure::Stability));
        assert!(!c.wants(Figure::Real));
    }
}
