//! Runs the bench's quick mode end to end against the built service binaries, so the bench
//! keeps working as the services change.
//!
//! Needs what the other end-to-end tests need (the local Postgres, `nats-server`, the real model
//! server of `scripts/real-model.sh`) plus the
//! binaries of nightshift-gateway, -worker, -metrics, nightshift and ollama-sim:
//! `cargo test --workspace` builds them in `target/debug`; otherwise set NIGHTSHIFT_BIN_DIR.

use clap::Parser;
use std::path::PathBuf;

const BINARIES: [&str; 5] =
    ["nightshift-gateway", "nightshift-worker", "nightshift-metrics", "nightshift", "ollama-sim"];

/// The first folder holding every binary: NIGHTSHIFT_BIN_DIR, then target/debug, target/release.
fn bin_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let candidates: Vec<PathBuf> = std::env::var_os("NIGHTSHIFT_BIN_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain([target.join("debug"), target.join("release")])
        .collect();
    candidates
        .iter()
        .find(|dir| BINARIES.iter().all(|b| dir.join(b).is_file()))
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "no folder among {candidates:?} holds {BINARIES:?}: run `cargo build -p \
                 nightshift-gateway -p nightshift-worker -p nightshift-metrics -p nightshift -p \
                 ollama-sim` (or cargo test --workspace), or set NIGHTSHIFT_BIN_DIR"
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_mode_measures_every_figure_on_both_deployments_and_renders_the_report() {
    use nightshift_bench::Deployment::{Distributed, Standalone};
    use nightshift_bench::report::on;
    let run_dir = tempfile::tempdir().unwrap();
    let database = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let config = nightshift_bench::Config::try_parse_from([
        "nightshift-bench".as_ref(),
        "--quick".as_ref(),
        "--bin-dir".as_ref(),
        bin_dir().as_os_str(),
        "--run-dir".as_ref(),
        run_dir.path().as_os_str(),
        "--database-url".as_ref(),
        database.as_ref(),
    ])
    .unwrap();

    let report = nightshift_bench::run(config).await.unwrap();

    let markdown = report.markdown();
    assert!(!report.any_failed(), "a figure failed:\n{markdown}");
    for deployment in [Distributed, Standalone] {
        let efficiency = on(&report.efficiency, deployment).unwrap();
        assert!(efficiency.ratio().is_some_and(|r| r > 0.0), "{markdown}");
        let ceiling = on(&report.ceiling, deployment).unwrap();
        assert_eq!(ceiling.run.total(), 2_000);
        assert_eq!(ceiling.workers * ceiling.worker_concurrency, 64, "{markdown}");
        assert!(ceiling.run.moments.completed.is_some(), "{markdown}");
        let ingest = on(&report.ingest, deployment).unwrap();
        assert!(ingest.large.peak_mib() > 0.0 && ingest.large.bytes > 4_000_000, "{markdown}");
        let stability = on(&report.stability, deployment).unwrap();
        assert_eq!(stability.rates().len(), 5);
        assert!(stability.variance_pct().is_some(), "{markdown}");
        let real = on(&report.real, deployment).unwrap();
        assert_eq!(real.pipeline.total(), 40, "{markdown}");
        assert!(real.ratio().is_some_and(|r| r > 0.0), "{markdown}");
    }
    // Standalone is one process: no nats-server, its memory is the process's.
    let stability = on(&report.stability, Standalone).unwrap();
    assert_eq!(stability.services(), ["nightshift"], "{markdown}");
    for row in [
        "| 1 | efficiency",
        "| 2 | pipeline ceiling",
        "| 3 | ingest",
        "| 4 | stability",
        "| 5 | real model",
    ] {
        assert!(markdown.contains(row), "no {row:?} row in:\n{markdown}");
    }
    assert!(markdown.contains("| # | figure | distributed | standalone | target |"), "{markdown}");
}
