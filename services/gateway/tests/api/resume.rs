//! A gateway stopped halfway through publishing: the next one finishes without duplicate chunks.

use crate::helpers::{chat_file, spawn_app_with, spawn_on};
use nightshift_shared::db::Db;
use nightshift_shared::openai::BatchStatus;
use sqlx::PgPool;
use std::collections::HashSet;
use std::time::Duration;

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn gateway_stopped_mid_publish_is_resumed_by_the_next_without_duplicates(pool: PgPool) {
    let args = ["--chunk-size", "1"];
    let first = spawn_app_with(pool.clone(), &args).await;
    let batch = first.submit(chat_file(4000)).await;
    first.wait_for(&batch.id, BatchStatus::InProgress).await;
    // Stop the gateway as soon as some, but not all, chunks are recorded as published.
    let (total, published) = loop {
        let (total, published) = first.state.store.chunk_progress(&batch.id).await.unwrap();
        if published > 0 {
            break (total, published);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let nats = first.stop().await;
    let (_, published_at_stop) = {
        let store = nightshift_gateway::store::Store::from_db(Db::Postgres(pool.clone()));
        store.chunk_progress(&batch.id).await.unwrap()
    };
    assert_eq!(total, 4000);
    assert!(published > 0 && published_at_stop < total, "the stop came too late to test a resume");

    let second = spawn_on(pool, nats, &args).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (_, published) = second.state.store.chunk_progress(&batch.id).await.unwrap();
        if published == total {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "resume stalled at {published}/{total}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let chunks = second.chunk_messages().await;
    let indexes: HashSet<u32> = chunks.iter().map(|c| c.chunk_index).collect();
    assert_eq!(chunks.len(), 4000, "every chunk exactly once on the queue");
    assert_eq!(indexes.len(), 4000);
}
