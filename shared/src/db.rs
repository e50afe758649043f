//! One database handle for Postgres (the distributed deployment) and SQLite (standalone mode).
//!
//! A store holds a [`Db`] and writes each statement once: portable SQL runs on either pool
//! through [`on_db!`], which expands the same body once per backend, so the bound values and
//! row decoding are written once and checked by the compiler for both. Where the dialects part
//! (Postgres arrays and `UNNEST`, data-modifying CTEs, `percentile_cont`), the store matches on
//! [`Db`] and says why.
//!
//! The URL picks the backend: `postgres://…` or `sqlite://PATH` (the file is created if missing).

use anyhow::Context;
use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

/// How long a statement waits for a Postgres connection. While the server is down, a new
/// connection is refused and sqlx retries until this passes: it bounds how long an API call takes
/// to answer 503 during an outage. A busy pool hands connections back in milliseconds.
const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// Rows per multi-row statement (`VALUES` lists, `IN (...)` lists): SQLite binds at most 32,766
/// parameters in one statement and Postgres 65,535; the widest row any store writes binds 15.
/// Such statements differ in text with their row count, so build them `persistent(false)`:
/// cached, every row count would hold a prepared statement on every connection (and, on
/// Postgres, on the server).
pub const ROWS_PER_STATEMENT: usize = 1000;

/// A pool on one of the two supported databases.
#[derive(Clone, Debug)]
pub enum Db {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn of_url(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else {
            anyhow::bail!(
                "DATABASE_URL must start with postgres:// (distributed) or sqlite:// (standalone)"
            )
        }
    }
}

/// Runs `$body` with `$pool` bound to whichever pool `$db` holds. The body is expanded once per
/// backend, so it must compile against both (`sqlx::query(..).fetch_all($pool)` does).
#[macro_export]
macro_rules! on_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Postgres($pool) => $body,
            $crate::db::Db::Sqlite($pool) => $body,
        }
    };
}

impl Db {
    /// Connects to `url`, creating the database (or the SQLite file) first if it does not exist.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        match Backend::of_url(url)? {
            Backend::Postgres => {
                if !sqlx::Postgres::database_exists(url).await.context(
                    "cannot reach Postgres: check DATABASE_URL and that the server is up",
                )? {
                    sqlx::Postgres::create_database(url).await.context("creating the database")?;
                }
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
                    .connect(url)
                    .await
                    .context("connecting to Postgres (DATABASE_URL)")?;
                Ok(Self::Postgres(pool))
            }
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)
                    .with_context(|| format!("DATABASE_URL {url:?} is not a SQLite URL"))?;
                Ok(Self::Sqlite(sqlite_pool(options, max_connections).await?))
            }
        }
    }

    /// Opens (creating it if missing) the SQLite database at `path`.
    pub async fn sqlite_file(path: &std::path::Path, max_connections: u32) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::new().filename(path);
        Ok(Self::Sqlite(sqlite_pool(options, max_connections).await?))
    }

    /// Runs `migrator`, ignoring versions it does not know: the gateway (1..) and the metrics
    /// service (1001..) may share one database and its migration table.
    pub async fn migrate(&self, mut migrator: Migrator, what: &str) -> anyhow::Result<()> {
        migrator.set_ignore_missing(true);
        on_db!(self, pool => migrator.run(pool).await)
            .with_context(|| format!("running {what} migrations"))
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_db!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgres(_) => Backend::Postgres,
            Self::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// How a transaction that reads before it writes begins (`pool.begin_with(..)`). SQLite must
    /// take its write lock up front: one that read first could find another writer's commit in
    /// between and fail with `SQLITE_BUSY` instead of waiting. Postgres rows lock as they are
    /// written.
    pub fn begin_write(&self) -> &'static str {
        match self.backend() {
            Backend::Postgres => "BEGIN",
            Backend::Sqlite => "BEGIN IMMEDIATE",
        }
    }

    /// How a transaction of several reads that must see one snapshot begins (SQLite's readers
    /// see one from their first read on).
    pub fn begin_snapshot(&self) -> &'static str {
        match self.backend() {
            Backend::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            Backend::Sqlite => "BEGIN",
        }
    }
}

/// SQLite as a server-grade store for one process: write-ahead log (readers never wait for the
/// writer), `synchronous = NORMAL` (a commit survives a process crash; a power cut may lose the
/// last commits, never corrupt the file), foreign keys on, and writers wait for each other
/// instead of failing with `SQLITE_BUSY`.
async fn sqlite_pool(
    options: SqliteConnectOptions,
    max_connections: u32,
) -> anyhow::Result<SqlitePool> {
    let options = options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(30));
    let name = options.get_filename().display().to_string();
    SqlitePoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .with_context(|| format!("opening SQLite database {name}"))
}
