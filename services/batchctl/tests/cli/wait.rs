//! `batchctl wait` and `submit --wait`: follow a batch to its end; exit 0 only if it completed.

use crate::helpers::{spawn_gateway, valid_batch_file};
use nightshift_shared::openai::BatchStatus;
use sqlx::PgPool;
use std::time::Duration;

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn wait_exits_1_when_the_gateway_fails_the_batch_in_validation(pool: PgPool) {
    let gateway = spawn_gateway(pool).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.jsonl");
    std::fs::write(&file, "this is not JSON\n").unwrap();

    let submitted =
        gateway.batchctl(&["submit", file.to_str().unwrap(), "--wait", "--poll", "100ms"]).await;

    assert_eq!(submitted.code, 1, "{submitted:?}");
    let id = submitted.stdout.lines().next().unwrap();
    assert!(submitted.stdout.contains(&format!("{id}  failed  0/0 completed")), "{submitted:?}");
    assert!(submitted.stdout.contains("\n  line 1: "), "validation errors are listed");
    let waited = gateway.batchctl(&["wait", id]).await;
    assert_eq!(waited.code, 1, "{waited:?}");
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn wait_follows_a_running_batch_and_exits_by_how_it_ended(pool: PgPool) {
    let gateway = spawn_gateway(pool).await;
    let dir = tempfile::tempdir().unwrap();
    let cancelled = gateway.submit(&valid_batch_file(dir.path(), 3)).await;
    let completed = gateway.submit(&valid_batch_file(dir.path(), 3)).await;
    gateway.wait_for(&cancelled, BatchStatus::InProgress).await;
    gateway.wait_for(&completed, BatchStatus::InProgress).await;

    let wait_args = ["wait", cancelled.as_str(), "--poll", "100ms"];
    let (waited, ()) = tokio::join!(gateway.batchctl(&wait_args), async {
        // No workers exist yet: end the batch in the database while `wait` watches.
        tokio::time::sleep(Duration::from_millis(700)).await;
        gateway.force_status(&cancelled, BatchStatus::Cancelled).await;
    });
    gateway.force_status(&completed, BatchStatus::Completed).await;
    let finished = gateway.batchctl(&["wait", &completed]).await;

    assert_eq!(waited.code, 1, "{waited:?}");
    let lines: Vec<&str> = waited.stdout.lines().collect();
    assert!(lines[0].starts_with(&format!("{cancelled}  in_progress  0/3 (0.0%)")), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with(&format!("{cancelled}  cancelled  0/3 completed"))));
    assert_eq!(finished.code, 0, "{finished:?}");
    assert!(finished.stdout.contains(&format!("{completed}  completed")), "{finished:?}");
}
