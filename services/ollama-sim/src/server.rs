//! Serving the simulator: on a caller's listener, or spawned in-process for tests.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::SimConfig;
use crate::routes::router;
use crate::state::SimState;

/// Serves the simulator on `listener` until `shutdown` completes. Requests still
/// sleeping or hanging then answer 503 so shutdown does not wait out a long hang.
pub async fn serve(
    listener: TcpListener,
    config: SimConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = SimState::new(config).context("invalid simulator config")?;
    serve_state(listener, state, shutdown).await
}

/// As [`serve`], over an existing state (so a caller can inspect or reconfigure it).
pub async fn serve_state(
    listener: TcpListener,
    state: SimState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = router(state.clone());
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            state.cancel();
        })
        .await
        .context("simulator server failed")
}

/// Spawns the simulator on 127.0.0.1 (a free port) in the current runtime.
pub async fn spawn(config: SimConfig) -> anyhow::Result<SimHandle> {
    let state = SimState::new(config).context("invalid simulator config")?;
    let listener =
        TcpListener::bind("127.0.0.1:0").await.context("binding 127.0.0.1:0 for the simulator")?;
    let addr = listener.local_addr().context("reading the simulator's address")?;
    let token = CancellationToken::new();
    let task = tokio::spawn(serve_state(listener, state.clone(), token.clone().cancelled_owned()));
    Ok(SimHandle { url: format!("http://{addr}"), addr, state, token, task: Some(task) })
}

/// A running in-process simulator; dropping it stops the server.
#[derive(Debug)]
pub struct SimHandle {
    /// Base URL, e.g. `http://127.0.0.1:40123` (no trailing slash).
    pub url: String,
    pub addr: SocketAddr,
    /// The live simulator: read counters, patch config, evict, without HTTP.
    pub state: SimState,
    token: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl SimHandle {
    /// Stops the server and waits until it has shut down.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.token.cancel();
        match self.task.take() {
            Some(task) => task.await.context("simulator task panicked")?,
            None => Ok(()),
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.token.cancel();
    }
}
