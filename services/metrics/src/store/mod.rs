//! Persistence in the service's own `metrics_*` tables, on Postgres (distributed) or SQLite
//! (standalone, one embedded file): the same [`Store`] and methods on either.
//!
//! # How it scales
//! - Requests: one row per request line, keyed `(batch_id, line)`: that key is the batch index,
//!   so a 170,000-request batch's aggregates (counts, latency percentiles, tokens, error types)
//!   are one range scan of ~170,000 narrow rows (~30 MB), and a re-run line overwrites its row
//!   instead of adding one. A chunk's requests are written in one transaction.
//! - GPU samples: raw rows (one per GPU per sample) are kept for `METRICS_RAW_SAMPLE_RETENTION_HOURS`
//!   (48 h), then [`rollup`] folds them into one row per GPU per minute (min/max/avg/last), so
//!   sampling every 15 s costs ~11,500 raw rows per GPU at most plus 1,440 rows per GPU per day
//!   afterwards. Samples taken at a chunk's start and end carry their batch id and stay raw for
//!   `METRICS_BATCH_SAMPLE_RETENTION_DAYS`, so old batches keep exact before/after/peak figures.
//! - `/v1/gpus` reads `metrics_gpus`, one row per GPU kept current on ingest, never the samples.
//!
//! # Postgres and SQLite
//! Every statement is written once and runs on either backend through
//! [`nightshift_shared::on_db!`]: static text bound with parameters, or built with `QueryBuilder`
//! where it takes many rows (multi-row `VALUES`,
//! [`ROWS_PER_STATEMENT`](nightshift_shared::db::ROWS_PER_STATEMENT) at a time), checked at
//! run time by the tests on both backends (`tests/store`). The schema is `migrations/` (Postgres)
//! and `migrations-sqlite/` (the same tables, keys and constraints). What the dialects lack is
//! done in Rust: latency percentiles are interpolated over the sorted latencies
//! ([`crate::stats::percentile_cont`], Postgres' definition), and a rollup folds the samples its
//! delete returned. Postgres once had its own statements here (`UNNEST`, `percentile_cont`,
//! a data-modifying CTE); nothing the benchmarks measure depended on them.

#[macro_use]
mod sql;

pub mod ingest;
pub mod read;
pub mod rollup;

use nightshift_shared::db::{Backend, Db};

/// The Postgres migrations, for `#[sqlx::test(migrator = ..)]`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The metrics service's handle on its database.
#[derive(Clone)]
pub struct Store {
    db: Db,
}

impl Store {
    /// Connects, creating the database (or SQLite file) if it does not exist yet, and runs
    /// migrations.
    pub async fn connect(args: &nightshift_shared::config::DatabaseArgs) -> anyhow::Result<Self> {
        let store = Self::from_db(args.connect().await?);
        store.migrate().await?;
        Ok(store)
    }

    pub fn from_db(db: Db) -> Self {
        Self { db }
    }

    /// Runs this service's migrations for the backend it is on. The gateway (versions 1..) and
    /// the metrics service (1001..) may share one database and its migration table, so each
    /// ignores the other's.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.db.backend() {
            Backend::Postgres => sqlx::migrate!("./migrations"),
            Backend::Sqlite => sqlx::migrate!("./migrations-sqlite"),
        };
        self.db.migrate(migrator, "metrics").await
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        self.db.ping().await
    }
}

/// Unix time in milliseconds, the unit of every telemetry timestamp.
pub use nightshift_shared::clock::unix_ms as now_ms;

/// A count or size as a SQL `BIGINT`.
pub(crate) fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
