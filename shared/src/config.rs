//! Connection settings every service flattens into its own clap config.

use crate::db::Db;
use clap::Args;
use secrecy::{ExposeSecret, SecretString};

/// Where NATS JetStream is, and how its streams are kept. Every service that may be the first to
/// create the streams reads the same settings, and whichever starts brings the streams to them.
#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    /// NATS server URL (JetStream must be enabled); several servers of a cluster comma-separated.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,

    /// Hours a published result waits in JetStream for the collector before it is dropped.
    #[arg(long, env = "NIGHTSHIFT_RESULTS_RETENTION_HOURS", default_value_t = 72)]
    pub results_retention_hours: u64,

    /// Copies JetStream keeps of each stream: 1, or 3 (or 5) on a cluster of that many servers,
    /// so that losing a server loses nothing.
    #[arg(long, env = "NIGHTSHIFT_STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,
}

impl NatsArgs {
    /// The stream settings these arguments ask for.
    pub fn streams(&self) -> crate::jetstream::StreamSettings {
        crate::jetstream::StreamSettings {
            results_retention: std::time::Duration::from_secs(
                self.results_retention_hours.max(1) * 3600,
            ),
            replicas: self.stream_replicas.max(1),
        }
    }

    /// Connects to NATS and brings the streams to these settings.
    pub async fn connect(&self) -> anyhow::Result<crate::queue::nats::JetStreamQueue> {
        crate::queue::nats::JetStreamQueue::connect(&self.nats_url, self.streams()).await
    }
}

/// Where the database is.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// `postgres://…` (distributed) or `sqlite://PATH` (one process); it may hold a password, so
    /// it never prints.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/nightshift"
    )]
    pub database_url: SecretString,

    /// Most connections this process opens to the database.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,
}

impl DatabaseArgs {
    /// Connects, creating the database first if it does not exist yet.
    pub async fn connect(&self) -> anyhow::Result<Db> {
        Db::connect(self.database_url.expose_secret(), self.database_max_connections).await
    }
}

/// Optional API keys: when any is set, every `/v1` route needs `Authorization: Bearer <key>`.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// Comma-separated API keys; empty means the API is open.
    #[arg(long, env = "NIGHTSHIFT_API_KEYS", value_delimiter = ',', hide_env_values = true)]
    pub api_keys: Vec<SecretString>,
}
