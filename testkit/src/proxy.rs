//! A TCP proxy a test puts between a service and a server it depends on, to play an outage of
//! that server without touching it: [`FaultProxy::cut`] resets every open connection and stops
//! listening (new connections are refused), as a crashed or restarting server does;
//! [`FaultProxy::heal`] listens on the same port again.

use std::sync::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct FaultProxy {
    pub port: u16,
    target: String,
    cut: watch::Sender<u64>,
    listening: Mutex<Option<JoinHandle<()>>>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards each connection to `target` (`host:port`).
    pub async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, _) = watch::channel(0u64);
        let proxy = Self { port, target: target.to_owned(), cut, listening: Mutex::new(None) };
        proxy.listen(listener);
        proxy
    }

    fn listen(&self, listener: TcpListener) {
        let target = self.target.clone();
        let cuts = self.cut.subscribe();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                let target = target.clone();
                let mut cuts = cuts.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cuts.changed() => {
                            let _ = client.set_zero_linger();
                            let _ = server.set_zero_linger();
                        }
                    }
                });
            }
        });
        *self.listening.lock().unwrap() = Some(task);
    }

    /// `host:port` of the proxy.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server goes away: open connections are reset, new ones refused.
    pub fn cut(&self) {
        if let Some(task) = self.listening.lock().unwrap().take() {
            task.abort();
        }
        self.cut.send_modify(|n| *n += 1);
    }

    /// The server is back, on the same port.
    pub async fn heal(&self) {
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => break listener,
                // The aborted listener's socket may take a moment to close.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        };
        self.listen(listener);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.cut();
    }
}
