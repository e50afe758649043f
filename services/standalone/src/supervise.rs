//! How the parts of the one process start and stop together.
//!
//! One token tree: `services` is the process's own token, and the worker's token is its child,
//! so cancelling the services stops everything, while the worker can be stopped on its own
//! first. On Ctrl-C, or when any part stops by itself (it failed), the worker stops first: it
//! takes no new chunk and finishes (or gives back) the ones it has, while the gateway still
//! collects their results. Then the gateway and the metrics service stop, and the process exits
//! with the first error a part returned.

use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

/// The tasks of the process, and the tokens that stop them.
pub struct Parts {
    services_stop: CancellationToken,
    worker_stop: CancellationToken,
    worker: Option<JoinHandle<anyhow::Result<()>>>,
    services: JoinSet<anyhow::Result<()>>,
}

impl Default for Parts {
    fn default() -> Self {
        Self::new()
    }
}

impl Parts {
    pub fn new() -> Self {
        let services_stop = CancellationToken::new();
        let worker_stop = services_stop.child_token();
        Self { services_stop, worker_stop, worker: None, services: JoinSet::new() }
    }

    /// The token the worker stops with: cancelled first.
    pub fn worker_token(&self) -> CancellationToken {
        self.worker_stop.clone()
    }

    /// The token the other services stop with: cancelled once the worker has stopped.
    pub fn services_token(&self) -> CancellationToken {
        self.services_stop.clone()
    }

    pub fn spawn_worker(
        &mut self,
        work: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        self.worker = Some(tokio::spawn(work));
    }

    pub fn spawn_service(
        &mut self,
        serve: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        self.services.spawn(serve);
    }

    /// Runs until `shutdown` fires or a part stops by itself, then stops the worker, then the
    /// rest. Returns the first error of any part.
    pub async fn supervise(mut self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let mut worker = self.worker.take();
        let mut result = Ok(());
        let worker_done = tokio::select! {
            () = shutdown.cancelled() => None,
            done = join(&mut worker), if worker.is_some() => Some(settle(done)),
            Some(done) = self.services.join_next() => {
                result = settle(done);
                if let Err(e) = &result {
                    tracing::error!(error = ?e, "a service failed; stopping the others");
                }
                None
            }
        };
        if let Some(Err(e)) = &worker_done {
            tracing::error!(error = ?e, "the worker failed; stopping the services");
        }
        self.worker_stop.cancel();
        let worker_result = match (worker_done, worker) {
            (Some(done), _) => done,
            (None, Some(worker)) => settle(worker.await),
            (None, None) => Ok(()),
        };
        result = result.and(worker_result);
        self.services_stop.cancel();
        while let Some(done) = self.services.join_next().await {
            result = result.and(settle(done));
        }
        result
    }
}

async fn join(
    worker: &mut Option<JoinHandle<anyhow::Result<()>>>,
) -> Result<anyhow::Result<()>, JoinError> {
    match worker {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}

fn settle(done: Result<anyhow::Result<()>, JoinError>) -> anyhow::Result<()> {
    done.map_err(|e| anyhow::Error::new(e).context("a service task panicked"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    /// A service that serves until its token fires, noting whether the worker had stopped by
    /// then.
    async fn service(
        token: CancellationToken,
        worker_stopped: Arc<AtomicBool>,
        saw_worker_stopped: Arc<AtomicBool>,
    ) -> anyhow::Result<()> {
        token.cancelled().await;
        saw_worker_stopped.store(worker_stopped.load(Ordering::SeqCst), Ordering::SeqCst);
        Ok(())
    }

    /// A worker that drains for a while after its token fires, checking the services still run.
    async fn draining_worker(
        token: CancellationToken,
        services: CancellationToken,
        stopped: Arc<AtomicBool>,
    ) -> anyhow::Result<()> {
        token.cancelled().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        anyhow::ensure!(!services.is_cancelled(), "the services stopped while the worker drained");
        stopped.store(true, Ordering::SeqCst);
        Ok(())
    }

    #[tokio::test]
    async fn shutdown_stops_the_worker_first_while_the_services_still_run() {
        let mut parts = Parts::new();
        let (stopped, saw) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        parts.spawn_worker(draining_worker(
            parts.worker_token(),
            parts.services_token(),
            stopped.clone(),
        ));
        parts.spawn_service(service(parts.services_token(), stopped.clone(), saw.clone()));
        let shutdown = CancellationToken::new();
        let cancel = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            cancel.cancel();
        });
        tokio::time::timeout(Duration::from_secs(5), parts.supervise(&shutdown))
            .await
            .expect("the process stops")
            .expect("every part stopped cleanly");
        assert!(stopped.load(Ordering::SeqCst));
        assert!(saw.load(Ordering::SeqCst), "a service stopped before the worker had drained");
    }

    #[tokio::test]
    async fn a_failing_worker_stops_the_process_with_its_error() {
        let mut parts = Parts::new();
        parts.spawn_worker(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            anyhow::bail!("the backend is gone")
        });
        let saw = Arc::new(AtomicBool::new(false));
        parts.spawn_service(service(parts.services_token(), Arc::new(AtomicBool::new(true)), saw));
        let never = CancellationToken::new();
        let result = tokio::time::timeout(Duration::from_secs(5), parts.supervise(&never))
            .await
            .expect("a failing part stops the process without a signal");
        let error = format!("{:#}", result.unwrap_err());
        assert!(error.contains("the backend is gone"), "{error}");
    }

    #[tokio::test]
    async fn a_failing_service_drains_the_worker_then_stops_the_rest() {
        let mut parts = Parts::new();
        let (stopped, saw) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        parts.spawn_worker(draining_worker(
            parts.worker_token(),
            parts.services_token(),
            stopped.clone(),
        ));
        parts.spawn_service(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            anyhow::bail!("cannot bind the metrics port")
        });
        parts.spawn_service(service(parts.services_token(), stopped.clone(), saw.clone()));
        let never = CancellationToken::new();
        let result = tokio::time::timeout(Duration::from_secs(5), parts.supervise(&never))
            .await
            .expect("a failing part stops the process without a signal");
        let error = format!("{:#}", result.unwrap_err());
        assert!(error.contains("cannot bind the metrics port"), "{error}");
        assert!(stopped.load(Ordering::SeqCst), "the worker drained");
        assert!(saw.load(Ordering::SeqCst), "the other service outlived the worker");
    }

    #[tokio::test]
    async fn a_panicking_part_is_an_error_not_a_hang() {
        let mut parts = Parts::new();
        let worker_token = parts.worker_token();
        parts.spawn_worker(async move {
            worker_token.cancelled().await;
            Ok(())
        });
        parts.spawn_service(async { panic!("a bug") });
        let never = CancellationToken::new();
        let result = tokio::time::timeout(Duration::from_secs(5), parts.supervise(&never))
            .await
            .expect("a panicking part stops the process");
        assert!(format!("{:#}", result.unwrap_err()).contains("panicked"));
    }
}
