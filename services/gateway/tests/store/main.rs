//! The gateway's store on both of its backends: every test body is written once, as an
//! `async fn(Store)`, and runs on Postgres (a fresh database per test, `#[sqlx::test]`) and on
//! SQLite (a file in a temporary directory).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use nightshift_gateway::store::{ChunkRow, NewBatch, ResultRow, Store};
use nightshift_shared::db::Db;
use tempfile::TempDir;

mod batches;
mod chunks;
mod files;
mod results;
mod upgrade;

async fn postgres_store(pool: sqlx::PgPool) -> Store {
    let store = Store::from_db(Db::Postgres(pool));
    store.migrate().await.unwrap();
    store
}

/// A store on a new SQLite file; the file goes with the returned directory.
async fn sqlite_store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite_file(&dir.path().join("gateway.db"), 4).await.unwrap();
    let store = Store::from_db(db);
    store.migrate().await.unwrap();
    (dir, store)
}

/// A batch as `POST /v1/batches` would store it, created at `created_at` and expiring a day later.
fn new_batch(id: &str, owner: &str, created_at: i64) -> NewBatch {
    NewBatch {
        id: id.into(),
        owner: owner.into(),
        endpoint: "/v1/chat/completions".into(),
        input_file_id: "file-in".into(),
        completion_window: "24h".into(),
        metadata: Some([("run".to_owned(), id.to_owned())].into()),
        created_at,
        expires_at: created_at + 24 * 3600,
    }
}

/// `count` chunks of one request each.
fn chunks(count: i32) -> Vec<ChunkRow> {
    (0..count)
        .map(|i| ChunkRow { chunk_index: i, first_line: i, last_line: i, request_count: 1 })
        .collect()
}

/// A batch of `total` requests, one per chunk, validated and `in_progress` (none published).
async fn running_batch(store: &Store, id: &str, total: i32) {
    store.insert_batch(&new_batch(id, "owner", 1_000)).await.unwrap();
    let started =
        store.start_batch(id, total.into(), Some("llama3.2:1b"), &chunks(total), 1_001).await;
    assert!(started.unwrap());
}

/// A result for `line` of a batch: a success using 10 prompt, 5 completion and 2 cached tokens,
/// or a failure using none.
fn result(batch_id: &str, line: i32, ok: bool) -> ResultRow {
    let tokens = |n| ok.then_some(n);
    ResultRow {
        batch_id: batch_id.into(),
        line,
        custom_id: format!("req-{line}"),
        request_id: format!("{batch_id}-{line}"),
        ok,
        status_code: Some(if ok { 200 } else { 500 }),
        body: ok.then(|| r#"{"choices":[]}"#.to_owned()),
        error_code: (!ok).then(|| "server_error".to_owned()),
        error_message: (!ok).then(|| "boom".to_owned()),
        prompt_tokens: tokens(10),
        completion_tokens: tokens(5),
        cached_tokens: tokens(2),
    }
}
