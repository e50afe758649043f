//! A gateway served in the test's runtime, as every test that needs one in-process starts it:
//! its flags as the binary takes them, its database, and a NATS URL.

use clap::Parser;
use nightshift_gateway::{AppState, Config, store::Store};
use nightshift_shared::db::Db;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A serving gateway; dropping it stops it (without waiting), [`InProcessGateway::stop`] waits.
pub struct InProcessGateway {
    pub url: String,
    pub state: AppState,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl InProcessGateway {
    /// Serves a gateway on `db` and the NATS at `nats_url` (a cluster: its nodes,
    /// comma-separated) on a free port, with extra command-line `args`.
    pub async fn start(nats_url: &str, db: Db, args: &[&str]) -> Self {
        let mut argv = vec!["nightshift-gateway", "--nats-url", nats_url, "--addr", "127.0.0.1:0"];
        argv.extend_from_slice(args);
        let config = Config::try_parse_from(argv).unwrap();
        let shutdown = CancellationToken::new();
        let state = AppState::new(&config, Store::from_db(db), shutdown.clone()).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = tokio::spawn(nightshift_gateway::serve(listener, state.clone()));
        Self { url, state, shutdown, handle: Some(handle) }
    }

    /// Stops it as a restart would, and waits until everything it ran has stopped.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            handle.await.unwrap().unwrap();
        }
    }
}

impl Drop for InProcessGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
