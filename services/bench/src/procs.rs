//! Child processes the bench starts (services, simulator, nats-server): their logs, readiness
//! and resident memory as the kernel reports it in `/proc/<pid>/status`.

use anyhow::{Context, bail};
use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// One started process, killed when dropped.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    pub pid: u32,
    pub log: PathBuf,
    child: Child,
}

impl Proc {
    /// Starts `program` with `args` and `envs`, stdout and stderr to `<log_dir>/<name>.log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        envs: &[(&str, String)],
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        let log = log_dir.join(format!("{name}.log"));
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone().context("cloning the log handle")?;
        let mut command = Command::new(program);
        command
            .args(args)
            // The bench owns every setting these services see; a developer's shell must not
            // turn on API keys or change chunking behind its back.
            .env_remove("NIGHTSHIFT_API_KEYS")
            .env_remove("NIGHTSHIFT_CHUNK_SIZE")
            .env_remove("NIGHTSHIFT_CHUNK_MAX_BYTES")
            .env("RUST_LOG", "info")
            .env("NIGHTSHIFT_LOG_FORMAT", "json")
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .with_context(|| format!("starting {name} ({}): is it built?", program.display()))?;
        let pid = child.id().context("the child has no pid")?;
        Ok(Self { name: name.to_owned(), pid, log, child })
    }

    /// Fails, quoting the end of its log, if the process has exited.
    pub fn ensure_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait().context("checking a child")? {
            bail!("{} exited ({status}); its log ends:\n{}", self.name, log_tail(&self.log, 20));
        }
        Ok(())
    }

    /// Its resident memory now and at its peak.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let path = format!("/proc/{}/status", self.pid);
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        Memory::parse(&text).with_context(|| format!("no VmRSS/VmHWM in {path}"))
    }

    /// Resets the kernel's peak-RSS mark (VmHWM) to the current RSS, so a later
    /// [`Proc::memory`] reports the peak of what happened in between.
    pub fn reset_peak(&self) -> anyhow::Result<()> {
        let path = format!("/proc/{}/clear_refs", self.pid);
        std::fs::write(&path, "5").with_context(|| format!("writing {path}"))
    }

    /// Waits for a line containing `needle` in the process's log.
    pub async fn wait_for_log(&mut self, needle: &str, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if std::fs::read_to_string(&self.log).is_ok_and(|t| t.contains(needle)) {
                return Ok(());
            }
            self.ensure_alive()?;
            if Instant::now() > deadline {
                bail!("{} did not log {needle:?} within {limit:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `url` answers 2xx.
    pub async fn wait_http(
        &mut self,
        http: &reqwest::Client,
        url: &str,
        limit: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(r) = http.get(url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            self.ensure_alive()?;
            if Instant::now() > deadline {
                bail!("{} is not ready at {url} after {limit:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until something accepts connections on `port`.
    pub async fn wait_port(&mut self, port: u16, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            self.ensure_alive()?;
            if Instant::now() > deadline {
                bail!("{} does not listen on port {port} after {limit:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Kills it (the bench needs no graceful shutdown) and reaps it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Resident memory of a process, in KiB as `/proc` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memory {
    pub rss_kib: u64,
    /// Peak RSS since start or the last [`Proc::reset_peak`].
    pub hwm_kib: u64,
}

impl Memory {
    /// Reads `VmRSS` and `VmHWM` from the text of `/proc/<pid>/status`.
    pub fn parse(status: &str) -> Option<Self> {
        let field = |name: &str| {
            status.lines().find_map(|l| {
                let rest = l.strip_prefix(name)?.strip_prefix(':')?;
                rest.split_whitespace().next()?.parse::<u64>().ok()
            })
        };
        Some(Self { rss_kib: field("VmRSS")?, hwm_kib: field("VmHWM")? })
    }

    pub fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }

    pub fn hwm_mib(&self) -> f64 {
        self.hwm_kib as f64 / 1024.0
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr().context("reading the bound port")?.port())
}

/// The last `n` lines of a log, for error messages.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_read_from_proc_status_text() {
        let status =
            "Name:\tgateway\nVmPeak:\t  900 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n";
        let m = Memory::parse(status).unwrap();
        assert_eq!(m, Memory { rss_kib: 40960, hwm_kib: 51200 });
        assert_eq!(m.rss_mib(), 40.0);
        assert_eq!(m.hwm_mib(), 50.0);
        assert_eq!(Memory::parse("Name:\tx\n"), None);
    }

    #[tokio::test]
    async fn own_process_memory_is_readable_and_peak_resettable() {
        let dir = tempfile::tempdir().unwrap();
        let mut p =
            Proc::spawn("sleep", Path::new("sleep"), &["5".into()], &[], dir.path()).unwrap();
        p.ensure_alive().unwrap();
        let m = p.memory().unwrap();
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib);
        p.reset_peak().unwrap();
        p.stop().await;
    }
}
