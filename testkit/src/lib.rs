//! Test-only helpers shared by every crate's integration tests.
//!
//! [`NatsServer`] starts a `nats-server` with JetStream on a free port and a temporary store, so a
//! test may kill, restart or partition it without touching the shared server; [`cluster`] starts
//! three of them as one JetStream cluster. [`proxy::FaultProxy`] stands between a service and a
//! server (Postgres) so a test can cut the connection as an outage would. [`stack::Stack`] runs
//! the whole product around them against the simulator; [`gateway::InProcessGateway`] is the one
//! way a test serves a gateway in its own runtime. [`on_both_deployments!`] runs a test body on
//! both deployments, [`on_both_databases!`] a store test body on Postgres and SQLite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod cluster;
pub mod gateway;
pub mod proxy;
pub mod real_model;
pub mod stack;
mod standalone;

/// One `distributed::<name>` and one `standalone::<name>` test per body
/// `async fn <name>(Mode)` of the calling crate's `<module>`: the same test on both deployments.
/// The caller needs `sqlx` and `nightshift-gateway` (the Postgres migrations) as dev-dependencies.
// `crate::` is the caller's crate on purpose: the bodies are the caller's.
#[allow(clippy::crate_in_macro_def)]
#[macro_export]
macro_rules! on_both_deployments {
    ($($module:ident::$name:ident),* $(,)?) => {
        mod distributed {
            $(
                #[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
                async fn $name(pool: sqlx::PgPool) {
                    crate::$module::$name($crate::stack::Mode::Distributed(pool)).await
                }
            )*
        }
        mod standalone {
            $(
                #[tokio::test]
                async fn $name() {
                    crate::$module::$name($crate::stack::Mode::Standalone).await
                }
            )*
        }
    };
}

/// One `postgres::<name>` and one `sqlite::<name>` test per body `async fn <name>(Store)` of the
/// calling module: the same store test on both databases. The calling crate's root provides
/// `postgres_store(PgPool) -> Store` (migrated) and `sqlite_store() -> (TempDir, Store)` (a fresh
/// file, kept as long as the directory).
#[allow(clippy::crate_in_macro_def)]
#[macro_export]
macro_rules! on_both_databases {
    ($($body:ident),+ $(,)?) => {
        mod postgres {
            $(
                #[sqlx::test(migrations = false)]
                async fn $body(pool: sqlx::PgPool) {
                    super::$body(crate::postgres_store(pool).await).await;
                }
            )+
        }
        mod sqlite {
            $(
                #[tokio::test]
                async fn $body() {
                    let (_dir, store) = crate::sqlite_store().await;
                    super::$body(store).await;
                }
            )+
        }
    };
}

/// One `distributed_only::<name>` test per body: faults of what only the distributed deployment
/// has (Postgres, NATS).
#[allow(clippy::crate_in_macro_def)]
#[macro_export]
macro_rules! distributed_only {
    ($($module:ident::$name:ident),* $(,)?) => {
        mod distributed_only {
            $(
                #[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
                async fn $name(pool: sqlx::PgPool) {
                    crate::$module::$name($crate::stack::Mode::Distributed(pool)).await
                }
            )*
        }
    };
}

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `nats-server -js` owned by one test; killed (and its store removed) on drop.
pub struct NatsServer {
    pub port: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a fresh server with an empty JetStream store.
    pub fn start() -> Self {
        let store = tempfile::tempdir().expect("temp dir for the JetStream store");
        let port = free_port();
        let mut server = Self { port, store, child: None };
        server.spawn();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once, as a crash would (SIGKILL); the store stays for a restart.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same store.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn spawn(&mut self) {
        let child = Command::new(nats_server_binary())
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-sd"])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server must be installed (scripts/nats-server.sh install)");
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(10));
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The nats-server tests run: `NATS_SERVER_BIN`, else the current release `scripts/nats-server.sh`
/// installs into the cache, else the machine's (Debian's may be too old for every test).
pub fn nats_server_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN") {
        return PathBuf::from(bin);
    }
    let cache = std::env::var_os("NIGHTSHIFT_CACHE").map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/nightshift"))
    });
    let cached = cache.and_then(|dir| {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("nats-server")))
            .filter(|p| {
                p.is_file()
                    && p.parent().is_some_and(|d| d.to_string_lossy().contains("nats-server-"))
            })
            .collect();
        found.sort();
        found.pop()
    });
    cached.unwrap_or_else(|| PathBuf::from("/usr/sbin/nats-server"))
}

/// A binary of this workspace, built next to the running test (`target/<profile>/<name>`).
/// `cargo test --workspace` builds every package's binaries before running any test.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --bins` (or `cargo test --workspace`) first",
        path.display()
    );
    path
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Blocks until something accepts connections on `port`, or panics after `timeout`.
pub fn wait_for_port(port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port} after {timeout:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
