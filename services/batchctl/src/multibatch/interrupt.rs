//! Ctrl-C during a multi-batch run: the first one stops the run (after asking whether to cancel
//! the running batch); a second one answers that question "no".

use std::io::IsTerminal;
use std::sync::Arc;
use tokio::io::AsyncBufReadExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Watches for Ctrl-C from creation until drop.
pub struct Interrupts {
    first: CancellationToken,
    again: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Interrupts {
    pub fn watch() -> Self {
        let first = CancellationToken::new();
        let again = Arc::new(Notify::new());
        let task = tokio::spawn(listen(first.clone(), again.clone()));
        Self { first, again, task }
    }

    /// Resolves at the first Ctrl-C.
    pub async fn cancelled(&self) {
        self.first.cancelled().await;
    }

    pub fn interrupted(&self) -> bool {
        self.first.is_cancelled()
    }

    /// Whether the user wants `batch_id` cancelled: `--cancel-on-interrupt` says yes; on a
    /// terminal the user is asked (y/N; Ctrl-C again means no); otherwise no.
    pub async fn confirm_cancel(&self, batch_id: &str, cancel_on_interrupt: bool) -> bool {
        if cancel_on_interrupt {
            return true;
        }
        if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
            return false;
        }
        eprint!("\ninterrupted: cancel the running batch {batch_id} on the gateway? [y/N] ");
        let mut answer = String::new();
        let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
        tokio::select! {
            read = stdin.read_line(&mut answer) => {
                read.is_ok() && matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
            }
            () = self.again.notified() => {
                eprintln!();
                false
            }
        }
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn listen(first: CancellationToken, again: Arc<Notify>) {
    // Without a handler Ctrl-C would kill the process before anything is written.
    while tokio::signal::ctrl_c().await.is_ok() {
        if first.is_cancelled() {
            again.notify_one();
        } else {
            first.cancel();
        }
    }
}
