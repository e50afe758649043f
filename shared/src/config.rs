//! Connection settings every service flattens into its own clap config.

use crate::db::Db;
use clap::Args;
use secrecy::{ExposeSecret, SecretString};

/// Where NATS JetStream is.
#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    /// NATS server URL (JetStream must be enabled).
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
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
