//! A standalone data directory from before the SQLite tables were STRICT keeps its rows when the
//! migration rebuilds them, and values of the wrong type are refused from then on.

use crate::{chunks, new_batch, result};
use nightshift_gateway::store::Store;
use nightshift_shared::db::Db;

#[tokio::test]
async fn the_strict_migration_keeps_every_row_and_refuses_wrong_types() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.db");
    let Db::Sqlite(pool) = Db::sqlite_file(&path, 2).await.unwrap() else { unreachable!() };
    // The schema as the previous release left it: the migrations before 0003.
    let old = tempfile::tempdir().unwrap();
    for file in ["0001_init.sql", "0002_results.sql"] {
        let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-sqlite");
        std::fs::copy(from.join(file), old.path().join(file)).unwrap();
    }
    sqlx::migrate::Migrator::new(old.path()).await.unwrap().run(&pool).await.unwrap();
    let store = Store::from_db(Db::Sqlite(pool.clone()));
    store.insert_batch(&new_batch("batch-1", "owner", 1_000)).await.unwrap();
    assert!(store.start_batch("batch-1", 3, Some("m"), &chunks(3), 1_001).await.unwrap());
    store.record_results(&[result("batch-1", 0, true), result("batch-1", 1, false)]).await.unwrap();

    store.migrate().await.unwrap();

    let batch = store.get_batch("owner", "batch-1").await.unwrap().unwrap();
    assert_eq!((batch.total, batch.completed, batch.failed), (3, 1, 1));
    assert_eq!(store.chunk_progress("batch-1").await.unwrap(), (3, 0));
    let rows = store.results_after("batch-1", -1, 10).await.unwrap();
    assert_eq!(rows.iter().map(|r| (r.line, r.ok)).collect::<Vec<_>>(), [(0, true), (1, false)]);
    // Text where a number belongs, and a boolean that is neither 0 nor 1, are refused now.
    let wrong =
        sqlx::query("UPDATE batches SET total = 'many' WHERE id = 'batch-1'").execute(&pool).await;
    assert!(wrong.is_err(), "a STRICT table refuses text in an INTEGER column");
    let wrong = sqlx::query("UPDATE batch_results SET ok = 2 WHERE batch_id = 'batch-1'")
        .execute(&pool)
        .await;
    assert!(wrong.is_err(), "ok holds 0 or 1");
    // New rows still go in.
    let more = store.record_results(&[result("batch-1", 2, true)]).await.unwrap();
    assert!(more[0].all_in());
    // The chunks still belong to their batch: deleting it takes them along.
    sqlx::query("DELETE FROM batches WHERE id = 'batch-1'").execute(&pool).await.unwrap();
    assert_eq!(store.chunk_progress("batch-1").await.unwrap(), (0, 0));
}
