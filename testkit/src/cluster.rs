//! A JetStream cluster of three `nats-server`s on loopback, owned by one test: each node has its
//! own ports and store, a test may SIGKILL any node (the stream leader, say) and start it again.

use crate::{free_port, nats_server_binary, wait_for_port};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One node of a [`NatsCluster`].
struct Node {
    name: String,
    port: u16,
    config: PathBuf,
    child: Option<Child>,
}

pub struct NatsCluster {
    dir: tempfile::TempDir,
    nodes: Vec<Node>,
}

impl NatsCluster {
    /// Starts three nodes and waits until each accepts clients. JetStream needs a few more
    /// seconds to elect its meta leader: clients retry what they create until it has.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the cluster");
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let routes: Vec<String> =
            ports.iter().map(|(_, route)| format!("nats-route://127.0.0.1:{route}")).collect();
        let nodes = ports
            .iter()
            .enumerate()
            .map(|(i, (port, route))| {
                let name = format!("n{}", i + 1);
                let store = dir.path().join(format!("store-{name}"));
                let config = dir.path().join(format!("{name}.conf"));
                std::fs::write(
                    &config,
                    format!(
                        "server_name: {name}\nlisten: 127.0.0.1:{port}\n\
                         jetstream {{ store_dir: \"{}\" }}\n\
                         cluster {{\n  name: nightshift-test\n  listen: 127.0.0.1:{route}\n  \
                         routes: [{}]\n}}\n",
                        store.display(),
                        routes.join(", ")
                    ),
                )
                .expect("writing a node's config");
                Node { name, port: *port, config, child: None }
            })
            .collect();
        let mut cluster = Self { dir, nodes };
        for i in 0..3 {
            cluster.spawn(i);
        }
        for node in &cluster.nodes {
            wait_for_port(node.port, Duration::from_secs(10));
        }
        cluster
    }

    /// Every node's URL, comma-separated, as `NATS_URL` takes a cluster.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The URL of node `i` alone.
    pub fn node_url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].port)
    }

    /// The index of the node named `server_name` (as stream info names its leader).
    pub fn index_of(&self, server_name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == server_name)
    }

    /// SIGKILLs node `i`: no goodbye to its peers, its store stays for a restart.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `i` again with its store.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        wait_for_port(self.nodes[i].port, Duration::from_secs(10));
    }

    fn spawn(&mut self, i: usize) {
        let log =
            std::fs::File::create(self.dir.path().join(format!("{}.log", self.nodes[i].name)))
                .expect("node log");
        let child = Command::new(nats_server_binary())
            .arg("-c")
            .arg(&self.nodes[i].config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server must be installed (scripts/nats-server.sh install)");
        self.nodes[i].child = Some(child);
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
