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
use sqlx::postgres::PgPool;
use std::time::{SystemTime, UNIX_EPOCH};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The gateway's handle on its database.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Connects, creating the database if it does not exist yet, and runs migrations.
    pub async fn connect(args: &nightshift_shared::config::DatabaseArgs) -> anyhow::Result<Self> {
        let store = Self::from_pool(args.connect().await?);
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
