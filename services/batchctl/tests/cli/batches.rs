//! `submit`, `status`, `list` and `cancel` against a running gateway.

use crate::helpers::{spawn_gateway, valid_batch_file};
use nightshift_shared::openai::{Batch, BatchStatus, Endpoint};
use sqlx::PgPool;
use std::collections::BTreeMap;

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn submitted_batch_runs_and_shows_in_status_and_list(pool: PgPool) {
    let gateway = spawn_gateway(pool).await;
    let dir = tempfile::tempdir().unwrap();
    let file = valid_batch_file(dir.path(), 20);

    let run = gateway.batchctl(&["submit", file.to_str().unwrap(), "--metadata", "run=1"]).await;

    assert_eq!(run.code, 0, "{run:?}");
    let id = run.stdout.trim();
    assert!(id.starts_with("batch_"), "stdout is the batch id alone: {run:?}");
    let batch = gateway.wait_for(id, BatchStatus::InProgress).await;
    assert_eq!(batch.request_counts.total, 20);
    assert_eq!(batch.metadata.unwrap()["run"], "1");

    let status = gateway.batchctl(&["status", id]).await;
    assert_eq!(status.code, 0, "{status:?}");
    assert!(status.stdout.starts_with(&format!("{id}  in_progress  0/20 completed  0 failed")));

    let json = gateway.batchctl(&["status", id, "--json"]).await;
    let shown: Batch = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!((shown.id.as_str(), shown.status), (id, BatchStatus::InProgress));

    let list = gateway.batchctl(&["list"]).await;
    assert_eq!(list.code, 0, "{list:?}");
    let rows: Vec<&str> = list.stdout.lines().collect();
    assert!(rows[0].starts_with("ID"), "{rows:?}");
    assert!(rows[1].starts_with(&format!("{id}  in_progress")), "{rows:?}");
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn list_all_follows_every_page(pool: PgPool) {
    let gateway = spawn_gateway(pool).await;
    let dir = tempfile::tempdir().unwrap();
    let file = gateway.client.upload_file(&valid_batch_file(dir.path(), 2)).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let batch = gateway
            .client
            .create_batch(&file.id, Endpoint::ChatCompletions, &BTreeMap::new())
            .await
            .unwrap();
        ids.push(batch.id);
    }

    let one_page = gateway.batchctl(&["list", "--limit", "2"]).await;
    let all = gateway.batchctl(&["list", "--limit", "2", "--all"]).await;

    assert_eq!(one_page.stdout.lines().count(), 1 + 2, "{one_page:?}");
    assert_eq!(all.stdout.lines().count(), 1 + 3, "{all:?}");
    for id in &ids {
        assert!(all.stdout.contains(id.as_str()), "{id} missing from {all:?}");
    }
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn cancel_moves_a_running_batch_to_cancelling(pool: PgPool) {
    let gateway = spawn_gateway(pool).await;
    let dir = tempfile::tempdir().unwrap();
    let id = gateway.submit(&valid_batch_file(dir.path(), 5)).await;
    gateway.wait_for(&id, BatchStatus::InProgress).await;

    let run = gateway.batchctl(&["cancel", &id]).await;

    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with(&format!("{id}  cancelling")), "{run:?}");
    let batch = gateway.client.get_batch(&id).await.unwrap();
    // With no worker the batch stays cancelling, unless the gateway ended it before any chunk
    // was published.
    assert!(matches!(batch.status, BatchStatus::Cancelling | BatchStatus::Cancelled));
}
