//! The store on both backends: each test body is an `async fn(Store)` run once on a fresh
//! Postgres database (`#[sqlx::test]`) and once on a fresh SQLite file, so both dialects are
//! held to the same figures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod batches;
mod gpus;
mod helpers;
mod requests;
mod rollup;

use nightshift_metrics::store::Store;
use nightshift_shared::db::Db;
use tempfile::TempDir;

/// A migrated store on the test's fresh Postgres database.
async fn postgres_store(pool: sqlx::PgPool) -> Store {
    let store = Store::from_db(Db::Postgres(pool));
    store.migrate().await.unwrap();
    store
}

/// A migrated store on a new SQLite file; the file goes with the returned directory.
async fn sqlite_store() -> (TempDir, Store) {
    let dir = TempDir::new().unwrap();
    let db = Db::sqlite_file(&dir.path().join("metrics.db"), 4).await.unwrap();
    let store = Store::from_db(db);
    store.migrate().await.unwrap();
    (dir, store)
}
