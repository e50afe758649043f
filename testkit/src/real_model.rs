//! A real inference server with a real model for tests: llama.cpp's `llama-server` with Gemma 3
//! 270M, installed by `scripts/real-model.sh install` and started by its `start` on a free port
//! (the same flags and chat template a user gets). One at a time per test process: a real model
//! needs the machine's cores, and two would make each test's timing meaningless.

use crate::free_port;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

/// The model name the server answers to.
pub const MODEL: &str = "gemma3:270m";

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A running `llama-server`, stopped on drop.
pub struct RealModel {
    pub url: String,
    pid: u32,
    _turn: MutexGuard<'static, ()>,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/real-model.sh")
}

impl RealModel {
    /// Starts the server with `parallel` slots, waiting for this process's previous one to stop.
    /// Panics with the way to install it when it is not installed: a test that needs a real
    /// model must not pass without one.
    pub fn start(parallel: usize) -> Self {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let port = free_port();
        let out = Command::new("bash")
            .arg(script())
            .args(["start", &port.to_string()])
            .env("LLAMA_PARALLEL", parallel.to_string())
            .env("LLAMA_CTX", (parallel * 1024).to_string())
            .output()
            .expect("running scripts/real-model.sh");
        assert!(
            out.status.success(),
            "the real model server did not start (install it with `scripts/real-model.sh \
             install`):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut words = stdout.split_whitespace();
        let url = words.next().expect("start prints the URL").to_owned();
        let pid = words.next().and_then(|p| p.parse().ok()).expect("start prints the pid");
        Self { url, pid, _turn: turn }
    }
}

impl Drop for RealModel {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).args(["stop", &self.pid.to_string()]).status();
    }
}
