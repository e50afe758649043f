//! Postgres persistence of files, batches and chunks.
//!
//! SQL is static text bound with parameters and checked at run time by the tests rather than by
//! `query!` at compile time: the same statements are meant to serve the embedded SQLite mode,
//! and compile-time checking would need a live database of each kind for every build.

mod batches;
mod files;
mod results;

pub use batches::{BatchRow, ChunkRow, NewBatch};
pub use files::{FileRow, PART_SIZE};
pub use results::{Progress, ResultRow};

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The gateway's handle on its database.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Connects, creating the database if it does not exist yet, and runs migrations.
    pub async fn connect(args: &nightshift_shared::config::DatabaseArgs) -> anyhow::Result<Self> {
        let url = args.database_url.expose_secret();
        if !sqlx::Postgres::database_exists(url)
            .await
            .context("cannot reach Postgres: check DATABASE_URL and that the server is up")?
        {
            sqlx::Postgres::create_database(url).await.context("creating the database")?;
        }
        let pool = PgPoolOptions::new()
            .max_connections(args.database_max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .context("connecting to Postgres (DATABASE_URL)")?;
        let store = Self::from_pool(pool);
        store.migrate().await?;
        Ok(store)
    }

    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Runs this service's migrations. The gateway (versions 1..) and the metrics service
    /// (1001..) may share one database and its migration table, so each ignores the other's.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let mut migrator = sqlx::migrate!("./migrations");
        migrator.set_ignore_missing(true);
        migrator.run(&self.pool).await.context("running gateway migrations")
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }
}

/// Seconds since the Unix epoch, the unit of every OpenAI timestamp.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
