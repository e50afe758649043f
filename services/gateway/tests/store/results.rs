//! Results: recorded once each for running batches, counted, finalized and dropped at the end.

use crate::{result, running_batch};
use nightshift_gateway::store::{Progress, Store};
use nightshift_shared::openai::BatchStatus;

nightshift_testkit::on_both_databases!(
    each_result_counts_once_however_often_it_is_recorded,
    results_for_batches_not_running_are_ignored,
    finished_batch_finalizes_and_ends_without_its_results,
    cancelled_batch_ends_with_the_requests_that_never_ran_failed,
    concurrent_recorders_of_the_same_results_count_each_once,
    a_call_larger_than_one_statement_counts_every_batch_once,
);

fn counts(progress: &[Progress]) -> Vec<(String, i64, i64, i64)> {
    progress.iter().map(|p| (p.batch_id.clone(), p.total, p.completed, p.failed)).collect()
}

async fn each_result_counts_once_however_often_it_is_recorded(store: Store) {
    running_batch(&store, "batch-1", 3).await;
    let first =
        store.record_results(&[result("batch-1", 0, true), result("batch-1", 1, false)]).await;
    let first = first.unwrap();
    assert_eq!(counts(&first), [("batch-1".to_owned(), 3, 1, 1)]);
    assert_eq!(first[0].status, "in_progress");
    assert!(!first[0].all_in());

    // A redelivered result, and one line twice in the same call, count once.
    let rows =
        [result("batch-1", 1, false), result("batch-1", 2, true), result("batch-1", 2, true)];
    let second = store.record_results(&rows).await.unwrap();
    assert_eq!(counts(&second), [("batch-1".to_owned(), 3, 2, 1)]);
    assert!(second[0].all_in());
    assert!(store.record_results(&[result("batch-1", 0, true)]).await.unwrap().is_empty());
    assert!(store.record_results(&[]).await.unwrap().is_empty());

    let usage = store.get_batch_unscoped("batch-1").await.unwrap().unwrap().to_object().usage;
    assert_eq!((usage.input_tokens, usage.output_tokens), (20, 10));
    assert_eq!(usage.input_tokens_details.cached_tokens, 4);
    let stored = store.results_after("batch-1", -1, 10).await.unwrap();
    assert_eq!(
        stored.iter().map(|r| (r.line, r.ok)).collect::<Vec<_>>(),
        [(0, true), (1, false), (2, true)]
    );
    let failure = &stored[1];
    assert_eq!(
        (failure.status_code, failure.error_code.as_deref()),
        (Some(500), Some("server_error"))
    );
    assert_eq!((failure.body.as_deref(), failure.prompt_tokens), (None, None));
    assert_eq!(stored[2].body.as_deref(), Some(r#"{"choices":[]}"#));
    let page = store.results_after("batch-1", 0, 1).await.unwrap();
    assert_eq!(page.iter().map(|r| r.line).collect::<Vec<_>>(), [1]);
}

async fn results_for_batches_not_running_are_ignored(store: Store) {
    running_batch(&store, "running", 2).await;
    store.insert_batch(&crate::new_batch("validating", "owner", 1_000)).await.unwrap();
    running_batch(&store, "finalizing", 1).await;
    store.record_results(&[result("finalizing", 0, true)]).await.unwrap();
    assert!(store.begin_finalizing("finalizing", 1_100).await.unwrap());

    let rows = [
        result("validating", 0, true),
        result("finalizing", 1, true),
        result("running", 0, true),
        result("unknown", 0, true),
    ];
    let progress = store.record_results(&rows).await.unwrap();
    assert_eq!(counts(&progress), [("running".to_owned(), 2, 1, 0)]);
    assert!(store.results_after("validating", -1, 10).await.unwrap().is_empty());
    assert_eq!(store.results_after("finalizing", -1, 10).await.unwrap().len(), 1);
    assert!(store.results_after("unknown", -1, 10).await.unwrap().is_empty());
    let finalizing = store.get_batch_unscoped("finalizing").await.unwrap().unwrap();
    assert_eq!((finalizing.completed, finalizing.failed), (1, 0));
}

async fn finished_batch_finalizes_and_ends_without_its_results(store: Store) {
    running_batch(&store, "batch-1", 2).await;
    store.record_results(&[result("batch-1", 0, true)]).await.unwrap();
    assert!(!store.begin_finalizing("batch-1", 1_100).await.unwrap(), "finalized with work left");
    store.record_results(&[result("batch-1", 1, false)]).await.unwrap();
    assert!(store.begin_finalizing("batch-1", 1_200).await.unwrap());
    assert!(!store.begin_finalizing("batch-1", 1_250).await.unwrap(), "finalized twice");

    let ended = store.end_batch(
        "batch-1",
        BatchStatus::Completed,
        Some("file-out"),
        Some("file-err"),
        0,
        1_300,
    );
    assert!(ended.await.unwrap());
    let batch = store.get_batch("owner", "batch-1").await.unwrap().unwrap();
    assert_eq!(
        (batch.status, batch.finalizing_at, batch.completed_at),
        (BatchStatus::Completed, Some(1_200), Some(1_300))
    );
    assert_eq!(
        (batch.output_file_id.as_deref(), batch.error_file_id.as_deref()),
        (Some("file-out"), Some("file-err"))
    );
    assert_eq!((batch.completed, batch.failed, batch.cancelled_at), (1, 1, None));
    assert!(store.results_after("batch-1", -1, 10).await.unwrap().is_empty());
    let again = store.end_batch("batch-1", BatchStatus::Expired, None, None, 0, 1_400);
    assert!(!again.await.unwrap(), "a completed batch ended again");
}

async fn cancelled_batch_ends_with_the_requests_that_never_ran_failed(store: Store) {
    running_batch(&store, "batch-1", 5).await;
    store.record_results(&[result("batch-1", 0, true), result("batch-1", 1, true)]).await.unwrap();
    store.cancel_batch("owner", "batch-1", 1_100).await.unwrap();
    let late = store.record_results(&[result("batch-1", 2, false)]).await.unwrap();
    assert_eq!(counts(&late), [("batch-1".to_owned(), 5, 2, 1)], "a cancelling batch still counts");

    assert!(
        store
            .end_batch("batch-1", BatchStatus::Cancelled, Some("file-out"), None, 2, 1_200)
            .await
            .unwrap()
    );
    let batch = store.get_batch("owner", "batch-1").await.unwrap().unwrap();
    assert_eq!(
        (batch.status, batch.cancelled_at, batch.completed_at),
        (BatchStatus::Cancelled, Some(1_200), None)
    );
    assert_eq!((batch.completed, batch.failed, batch.total), (2, 3, 5));
}

async fn concurrent_recorders_of_the_same_results_count_each_once(store: Store) {
    running_batch(&store, "batch-1", 200).await;
    let rows: Vec<_> = (0..200).map(|line| result("batch-1", line, line % 4 != 0)).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for recorder in 0..4 {
        let (store, rows) = (store.clone(), rows.clone());
        tasks.spawn(async move {
            // Each records every result, in slices of 20, starting at a different slice.
            for slice in (0..10).map(|i| (i + recorder * 3) % 10) {
                store.record_results(&rows[slice * 20..slice * 20 + 20]).await.unwrap();
            }
        });
    }
    tasks.join_all().await;

    let batch = store.get_batch_unscoped("batch-1").await.unwrap().unwrap();
    assert_eq!((batch.completed, batch.failed, batch.input_tokens), (150, 50, 1_500));
    assert_eq!(store.results_after("batch-1", -1, 1_000).await.unwrap().len(), 200);
}

/// More rows than one statement takes (1,000), across two batches, with duplicates split over
/// the statements: every row counts once, on its own batch.
async fn a_call_larger_than_one_statement_counts_every_batch_once(store: Store) {
    running_batch(&store, "big-a", 1500).await;
    running_batch(&store, "big-b", 700).await;
    let mut rows: Vec<_> = (0..1500).map(|line| result("big-a", line, line % 10 != 0)).collect();
    rows.extend((0..700).map(|line| result("big-b", line, true)));
    // The first rows again, at the end: they land in another statement than their originals.
    rows.extend((0..50).map(|line| result("big-a", line, line % 10 != 0)));
    let progress = store.record_results(&rows).await.unwrap();
    assert_eq!(
        counts(&progress),
        [("big-a".to_owned(), 1500, 1350, 150), ("big-b".to_owned(), 700, 700, 0)]
    );
    assert!(progress.iter().all(|p| p.all_in()));
    let usage = store.get_batch_unscoped("big-a").await.unwrap().unwrap().to_object().usage;
    assert_eq!((usage.input_tokens, usage.output_tokens), (13_500, 6_750));
    assert!(store.record_results(&rows[..1200]).await.unwrap().is_empty());
}
