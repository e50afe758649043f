//! The README's first command on a fresh clone, with nothing but the Rust toolchain: no NATS and
//! no Postgres reachable (their URLs point at closed ports) and no Ollama (the simulator stands
//! in). It must build, start Nightshift standalone, run the multi-batch test and report.
//!
//! The clone is of the committed HEAD: uncommitted changes are not in it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use nightshift_testkit::free_port;
use std::path::Path;
use std::process::Command;

/// The first command of the README's first code block.
fn readme_first_command(repo: &Path) -> String {
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let mut lines = readme.lines().skip_while(|l| !l.starts_with("```"));
    lines.next();
    lines.next().expect("the README opens a code block with a command").trim().to_owned()
}

#[test]
fn readme_first_command_runs_on_a_fresh_clone_without_nats_or_postgres() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    let clone = dir.path().join("nightshift");
    let cloned = Command::new("git")
        .args(["clone", "--quiet"])
        .arg(&workspace)
        .arg(&clone)
        .status()
        .unwrap();
    assert!(cloned.success());
    let command = readme_first_command(&clone);
    assert_eq!(command, "scripts/multi-batch.sh", "the README's first command changed");
    let closed = free_port();

    let run = Command::new("bash")
        .arg("-c")
        // Variance is judged loosely: 200-request batches on a loaded CI machine vary; the point
        // here is that the whole product runs and reports, not this machine's steadiness.
        .arg(format!("{command} --max-variance-pct 100"))
        .current_dir(&clone)
        .env("NATS_URL", format!("nats://127.0.0.1:{closed}"))
        .env("DATABASE_URL", format!("postgres://postgres@127.0.0.1:{closed}/nightshift"))
        .env("OLLAMA_URL", format!("http://127.0.0.1:{closed}"))
        .env("GATEWAY_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("METRICS_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("BATCHES", "2")
        .env("PAUSE", "0s")
        .env("REQUESTS", "200")
        .env("OLLAMA_SIM_LATENCY_MS", "20")
        .env("CARGO_PROFILE", "dev")
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .env_remove("NIGHTSHIFT_URL")
        .env_remove("NIGHTSHIFT_METRICS_URL")
        .env_remove("NIGHTSHIFT_DATA_DIR")
        .output()
        .unwrap();

    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "exit {:?}\n{stdout}\n{stderr}", run.status);
    assert!(stdout.contains("SIMULATED Ollama"), "the simulator is named as such:\n{stdout}");
    assert!(stdout.contains("FINAL MULTI-BATCH SUMMARY"), "{stdout}");
    assert!(stdout.contains("Total requests: 400"), "{stdout}");
    let report = stdout
        .lines()
        .find_map(|l| l.strip_prefix("report:"))
        .map(|p| Path::new(p.trim()).to_owned())
        .expect("the report's path is printed");
    assert!(report.exists(), "{} was written", report.display());
    assert!(clone.join("results/standalone-data/gateway.db").exists());
}
