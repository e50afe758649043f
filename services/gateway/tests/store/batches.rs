//! Batches: insert, read, list, the ingest lease, and the sweeps that find background work.

use crate::{new_batch, result, running_batch};
use nightshift_gateway::store::Store;
use nightshift_shared::openai::{BatchError, BatchErrors, BatchStatus};

nightshift_testkit::on_both_databases!(
    inserted_batches_read_back_per_owner_and_list_newest_first_in_pages,
    ingest_lease_holds_against_others_until_released_or_expired,
    failing_validation_records_the_errors_once,
    batches_needing_work_are_those_with_work_and_no_live_lease,
    cancelling_batches_with_nothing_published_are_cancelled_at_once,
);

async fn inserted_batches_read_back_per_owner_and_list_newest_first_in_pages(store: Store) {
    for i in 0..3 {
        let created = store.insert_batch(&new_batch(&format!("batch-{i}"), "alice", 100 + i)).await;
        let created = created.unwrap();
        assert_eq!((created.status, created.created_at), (BatchStatus::Validating, 100 + i));
    }
    store.insert_batch(&new_batch("batch-bob", "bob", 200)).await.unwrap();

    let got = store.get_batch("alice", "batch-1").await.unwrap().unwrap();
    let object = got.to_object();
    assert_eq!(object.status, BatchStatus::Validating);
    assert_eq!(object.expires_at, Some(101 + 24 * 3600));
    assert_eq!(object.metadata.unwrap()["run"], "batch-1");
    assert_eq!((object.request_counts.total, object.errors), (0, None));
    assert!(store.get_batch("bob", "batch-1").await.unwrap().is_none(), "read by another owner");
    let unscoped = store.get_batch_unscoped("batch-bob").await.unwrap().unwrap();
    assert_eq!(unscoped.owner, "bob");

    let ids = |rows: Vec<nightshift_gateway::store::BatchRow>| {
        rows.into_iter().map(|r| r.id).collect::<Vec<_>>()
    };
    let first = store.list_batches("alice", None, 1).await.unwrap();
    assert_eq!(ids(first), ["batch-2", "batch-1"], "limit + 1 rows, newest first");
    let next = store.list_batches("alice", Some("batch-2"), 1).await.unwrap();
    assert_eq!(ids(next), ["batch-1", "batch-0"]);
    let last = store.list_batches("alice", Some("batch-0"), 1).await.unwrap();
    assert!(last.is_empty());
}

async fn ingest_lease_holds_against_others_until_released_or_expired(store: Store) {
    store.insert_batch(&new_batch("batch-1", "alice", 100)).await.unwrap();
    assert!(store.claim_ingest("batch-1", "gw-a", 100, 160).await.unwrap());
    assert!(!store.claim_ingest("batch-1", "gw-b", 120, 180).await.unwrap(), "lease stolen");
    assert!(store.claim_ingest("batch-1", "gw-a", 150, 210).await.unwrap(), "renewal refused");
    assert!(!store.claim_ingest("batch-1", "gw-b", 200, 260).await.unwrap(), "renewal ignored");
    assert!(store.claim_ingest("batch-1", "gw-b", 211, 270).await.unwrap(), "expired lease held");

    store.release_ingest("batch-1", "gw-a").await.unwrap();
    assert!(
        !store.claim_ingest("batch-1", "gw-a", 220, 280).await.unwrap(),
        "released by non-holder"
    );
    store.release_ingest("batch-1", "gw-b").await.unwrap();
    assert!(store.claim_ingest("batch-1", "gw-a", 220, 280).await.unwrap(), "release ignored");
}

async fn failing_validation_records_the_errors_once(store: Store) {
    store.insert_batch(&new_batch("batch-1", "alice", 100)).await.unwrap();
    let errors = BatchErrors::new(vec![BatchError {
        code: "invalid_json_line".into(),
        message: "line 3 is not JSON".into(),
        param: None,
        line: Some(3),
    }]);
    assert!(store.fail_batch("batch-1", &errors, 150).await.unwrap());
    assert!(!store.fail_batch("batch-1", &errors, 160).await.unwrap(), "failed twice");

    let batch = store.get_batch("alice", "batch-1").await.unwrap().unwrap().to_object();
    assert_eq!((batch.status, batch.failed_at), (BatchStatus::Failed, Some(150)));
    assert_eq!(batch.errors, Some(errors));
}

async fn batches_needing_work_are_those_with_work_and_no_live_lease(store: Store) {
    // Needs work: validating, and a running batch with a chunk still to publish.
    store.insert_batch(&new_batch("validating", "alice", 100)).await.unwrap();
    running_batch(&store, "unpublished", 2).await;
    // Needs none while its lease holds.
    store.insert_batch(&new_batch("leased", "alice", 100)).await.unwrap();
    store.claim_ingest("leased", "gw-a", 100, 10_000).await.unwrap();
    // Published and waiting on workers: nothing to do.
    running_batch(&store, "waiting", 2).await;
    store.mark_published_many("waiting", &[0, 1], 1_002).await.unwrap();
    // Every request has a result: it must be finalized.
    running_batch(&store, "all-in", 1).await;
    store.mark_published_many("all-in", &[0], 1_002).await.unwrap();
    store.record_results(&[result("all-in", 0, true)]).await.unwrap();

    let work = store.batches_needing_work(5_000, 2_000).await.unwrap();
    assert_eq!(work, ["validating", "unpublished", "all-in"]);
    assert!(store.expired_running(5_000).await.unwrap().is_empty());

    // Past the completion window (and the grace after it) every running batch needs ending, and
    // the lease has run out.
    let expires_at = store.get_batch_unscoped("waiting").await.unwrap().unwrap().expires_at;
    let expired = store.expired_running(expires_at).await.unwrap();
    assert_eq!(expired, ["unpublished", "waiting", "all-in"]);
    let later = store.batches_needing_work(expires_at + 100, expires_at + 1).await.unwrap();
    assert_eq!(later, ["validating", "unpublished", "leased", "waiting", "all-in"]);
    assert_eq!(store.batches_in_status("in_progress").await.unwrap().len(), 3);
}

async fn cancelling_batches_with_nothing_published_are_cancelled_at_once(store: Store) {
    running_batch(&store, "unpublished", 2).await;
    running_batch(&store, "published", 2).await;
    store.mark_published_many("published", &[0], 1_002).await.unwrap();
    store.insert_batch(&new_batch("untouched", "owner", 1_000)).await.unwrap();

    for id in ["unpublished", "published"] {
        let batch = store.cancel_batch("owner", id, 1_100).await.unwrap().unwrap();
        assert_eq!((batch.status, batch.cancelling_at), (BatchStatus::Cancelling, Some(1_100)));
    }
    assert!(store.cancel_batch("other", "untouched", 1_100).await.unwrap().is_none());

    assert_eq!(store.cancel_unpublished(1_200).await.unwrap(), ["unpublished"]);
    let cancelled = store.get_batch("owner", "unpublished").await.unwrap().unwrap();
    assert_eq!((cancelled.status, cancelled.cancelled_at), (BatchStatus::Cancelled, Some(1_200)));
    let cancelling = store.get_batch("owner", "published").await.unwrap().unwrap();
    assert_eq!(cancelling.status, BatchStatus::Cancelling, "published chunks may still run");
    let again = store.cancel_batch("owner", "unpublished", 1_300).await.unwrap().unwrap();
    assert_eq!(again.status, BatchStatus::Cancelled, "a cancelled batch came back changed");
    assert!(store.cancel_unpublished(1_300).await.unwrap().is_empty());
}
