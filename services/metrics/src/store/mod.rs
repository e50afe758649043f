//! Postgres persistence in the service's own `metrics_*` tables.
//!
//! # How it scales
//! - Requests: one row per request line, keyed `(batch_id, line)`: that key is the batch index,
//!   so a 170,000-request batch's aggregates (counts, latency percentiles, tokens, error types)
//!   are one range scan of ~170,000 narrow rows (~30 MB), and a re-run line overwrites its row
//!   instead of adding one. A chunk's requests are written in one statement (`UNNEST`).
//! - GPU samples: raw rows (one per GPU per sample) are kept for `METRICS_RAW_SAMPLE_RETENTION_HOURS`
//!   (48 h), then [`rollup`] folds them into one row per GPU per minute (min/max/avg/last), so
//!   sampling every 15 s costs ~11,500 raw rows per GPU at most plus 1,440 rows per GPU per day
//!   afterwards. Samples taken at a chunk's start and end carry their batch id and stay raw for
//!   `METRICS_BATCH_SAMPLE_RETENTION_DAYS`, so old batches keep exact before/after/peak figures.
//! - `/v1/gpus` reads `metrics_gpus`, one row per GPU kept current on ingest, never the samples.
//!
//! SQL is static text bound with parameters, checked at run time by the tests (as the gateway's).

pub mod ingest;
pub mod read;
pub mod rollup;

use anyhow::Context;
use sqlx::postgres::PgPool;
use std::time::{SystemTime, UNIX_EPOCH};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The metrics service's handle on its database.
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
        migrator.run(&self.pool).await.context("running metrics migrations")
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }
}

/// Unix time in milliseconds, the unit of every telemetry timestamp.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A count or size as Postgres `BIGINT`.
pub(crate) fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
