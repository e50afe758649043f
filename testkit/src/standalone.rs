//! A `nightshift standalone` process on a temporary data directory, for [`crate::stack::Stack`].
//!
//! Tests speak in the distributed services' flags (`--chunk-size 20`, `--concurrency 4`); the
//! standalone process reads every service setting from the environment, so each flag is passed
//! as the variable the service's own clap config names for it.

use crate::{free_port, workspace_bin};
use clap::CommandFactory;
use nightshift_shared::db::Db;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

pub struct Standalone {
    dir: tempfile::TempDir,
    gateway_port: u16,
    metrics_port: u16,
    child: Option<Child>,
    /// The gateway's and the worker's flags of the last start, for a restart.
    args: Option<(Vec<String>, Vec<String>)>,
}

impl Standalone {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp data directory"),
            gateway_port: free_port(),
            metrics_port: free_port(),
            child: None,
            args: None,
        }
    }

    pub fn gateway_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.gateway_port)
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// The data directory the process keeps its files in.
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The gateway's SQLite database, opened beside the running process.
    pub async fn gateway_db(&self) -> Db {
        Db::sqlite_file(&self.dir.path().join("gateway.db"), 2).await.unwrap()
    }

    /// Starts the process again with the flags of its last start (or these, the first time).
    pub async fn restart(&mut self, gateway_args: &[String], worker_args: &[String]) {
        let (gateway, worker) =
            self.args.clone().unwrap_or_else(|| (gateway_args.to_vec(), worker_args.to_vec()));
        self.start(&gateway, &worker).await;
    }

    /// Starts the process with the gateway's and the worker's flags, and waits until it is ready.
    pub async fn start(&mut self, gateway_args: &[String], worker_args: &[String]) {
        assert!(self.child.is_none(), "the standalone process runs already");
        self.args = Some((gateway_args.to_vec(), worker_args.to_vec()));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("standalone log file");
        let mut command = Command::new(workspace_bin("nightshift"));
        command.arg("standalone");
        for (name, value) in as_env(&nightshift_gateway::Config::command(), gateway_args)
            .into_iter()
            .chain(as_env(&nightshift_worker::Config::command(), worker_args))
        {
            command.env(name, value);
        }
        command
            .env_remove("NATS_URL")
            .env_remove("DATABASE_URL")
            .env("GATEWAY_ADDR", format!("127.0.0.1:{}", self.gateway_port))
            .env("METRICS_ADDR", format!("127.0.0.1:{}", self.metrics_port))
            .env("NIGHTSHIFT_DATA_DIR", self.dir.path())
            .env("NIGHTSHIFT_SIMULATOR", "never")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true);
        self.child = Some(command.spawn().expect("starting nightshift standalone"));
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let url = format!("{}/readyz", self.gateway_url());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if reqwest::get(&url).await.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            let exited = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "nightshift standalone did not become ready ({exited:?}):\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: nothing is flushed, acknowledged or finished.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    /// SIGTERM, and waits for the graceful shutdown.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
        match tokio::time::timeout(Duration::from_secs(60), child.wait()).await {
            Ok(status) => {
                let status = status.unwrap();
                assert!(status.success(), "standalone exited {status}:\n{}", self.log_tail());
            }
            Err(_) => panic!("standalone did not stop within 60 s:\n{}", self.log_tail()),
        }
    }

    fn log_path(&self) -> std::path::PathBuf {
        self.dir.path().join("nightshift.log")
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let start = log.len().saturating_sub(4000);
        log[log.ceil_char_boundary(start)..].to_owned()
    }
}

/// `--flag value` pairs as the environment variables `command` reads them from.
fn as_env(command: &clap::Command, args: &[String]) -> Vec<(String, String)> {
    args.chunks(2)
        .map(|pair| {
            let [flag, value] = pair else { panic!("flag without a value: {pair:?}") };
            let long = flag.trim_start_matches("--");
            let env = command
                .get_arguments()
                .find(|a| a.get_long() == Some(long))
                .and_then(|a| a.get_env())
                .unwrap_or_else(|| panic!("{flag} has no environment variable"));
            (env.to_string_lossy().into_owned(), value.clone())
        })
        .collect()
}
