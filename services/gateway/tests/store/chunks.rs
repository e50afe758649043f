//! Chunks: recorded when a batch starts, marked as they are published.

use crate::{chunks, new_batch};
use nightshift_gateway::store::Store;
use nightshift_shared::openai::BatchStatus;

nightshift_testkit::on_both_databases!(
    started_batch_records_every_chunk_and_publishing_marks_them,
    batch_cancelled_while_validating_does_not_start,
);

async fn started_batch_records_every_chunk_and_publishing_marks_them(store: Store) {
    // More chunks than SQLite takes in one statement.
    let all = chunks(2_500);
    store.insert_batch(&new_batch("batch-1", "alice", 100)).await.unwrap();
    assert!(store.start_batch("batch-1", 2_500, Some("llama3.2:1b"), &all, 150).await.unwrap());

    let batch = store.get_batch("alice", "batch-1").await.unwrap().unwrap();
    assert_eq!((batch.status, batch.in_progress_at), (BatchStatus::InProgress, Some(150)));
    assert_eq!(
        (batch.total, batch.chunk_count, batch.model.as_deref()),
        (2_500, 2_500, Some("llama3.2:1b"))
    );
    assert_eq!(store.chunk_progress("batch-1").await.unwrap(), (2_500, 0));
    assert_eq!(store.unpublished_chunks("batch-1").await.unwrap(), all);

    let first: Vec<i32> = (0..1_500).collect();
    store.mark_published_many("batch-1", &first, 160).await.unwrap();
    assert_eq!(store.chunk_progress("batch-1").await.unwrap(), (2_500, 1_500));
    assert_eq!(store.unpublished_chunks("batch-1").await.unwrap(), all[1_500..]);
    store.mark_published_many("batch-1", &[1_499, 1_500], 170).await.unwrap();
    store.mark_published_many("batch-1", &[], 170).await.unwrap();
    assert_eq!(store.chunk_progress("batch-1").await.unwrap(), (2_500, 1_501));

    assert!(
        !store.start_batch("batch-1", 1, None, &chunks(1), 180).await.unwrap(),
        "started twice"
    );
    assert_eq!(store.chunk_progress("batch-1").await.unwrap(), (2_500, 1_501));
}

async fn batch_cancelled_while_validating_does_not_start(store: Store) {
    store.insert_batch(&new_batch("batch-1", "alice", 100)).await.unwrap();
    store.cancel_batch("alice", "batch-1", 120).await.unwrap();
    assert!(!store.start_batch("batch-1", 3, None, &chunks(3), 150).await.unwrap());

    let batch = store.get_batch("alice", "batch-1").await.unwrap().unwrap();
    assert_eq!((batch.status, batch.total), (BatchStatus::Cancelling, 0));
    assert_eq!(store.chunk_progress("batch-1").await.unwrap(), (0, 0));
}
