//! Persistence of files, batches, chunks and results, on Postgres (distributed mode) or SQLite
//! (standalone mode, one process and an embedded file).
//!
//! Every statement is written once and runs on either backend through
//! [`on_db!`](nightshift_shared::on_db): SQL is static text bound with `$N` parameters (which
//! sqlx's SQLite driver accepts too), or built with `QueryBuilder` where a statement takes many
//! rows (multi-row `VALUES`, `IN (...)` lists,
//! [`ROWS_PER_STATEMENT`](nightshift_shared::db::ROWS_PER_STATEMENT) at a time), checked at run
//! time by tests that run on both backends rather than by `query!` at compile time, which would
//! need a live database of each kind for every build. The only difference left is how a
//! transaction that reads before it writes begins ([`Db::begin_write`]). Postgres once had its
//! own statements here (`UNNEST` over arrays, a data-modifying CTE for `record_results`); the
//! portable ones kept the collector's ceiling within the spread (BENCHMARKS.md), so they went.
//!
//! The schemas are `./migrations` (Postgres) and `./migrations-sqlite`: the same tables,
//! constraints and indexes in each dialect. SQLite's tables are STRICT (its `0003`, which
//! rebuilds a data directory's tables in place), so a value of the wrong type is refused on both.

mod batches;
mod chunks;
mod files;
mod results;

pub use batches::{BatchRow, NewBatch};
pub use chunks::ChunkRow;
pub use files::{FileRow, PART_SIZE};
pub use results::{Progress, ResultRow};

use nightshift_shared::db::{Backend, Db};

/// The Postgres migrations, for `#[sqlx::test(migrator = ..)]`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The gateway's handle on its database.
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

    /// A store on an open database; run [`Store::migrate`] before use.
    pub fn from_db(db: Db) -> Self {
        Self { db }
    }

    /// Runs this service's migrations for the backend. The gateway (versions 1..) and the metrics
    /// service (1001..) may share one database and its migration table, so each ignores the
    /// other's.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.db.backend() {
            Backend::Postgres => sqlx::migrate!("./migrations"),
            Backend::Sqlite => sqlx::migrate!("./migrations-sqlite"),
        };
        self.db.migrate(migrator, "gateway").await
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        self.db.ping().await
    }
}

/// Seconds since the Unix epoch, the unit of every OpenAI timestamp.
pub use nightshift_shared::clock::unix_secs as now;
