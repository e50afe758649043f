//! Batch lifecycle rows and model reloads.

use nightshift_metrics::store::Store;
use nightshift_metrics::store::read::ReloadRow;
use nightshift_shared::measurements::{BatchEvent, ModelReload};
use nightshift_shared::openai::BatchStatus;

nightshift_testkit::on_both_databases!(
    an_older_event_cannot_overwrite_a_newer_one_and_start_and_end_keep_the_earliest,
    a_reload_is_stored_once_and_found_by_batch_or_time_window,
);

fn event(status: BatchStatus, at: i64, completed: u64, model: Option<&str>) -> BatchEvent {
    BatchEvent {
        batch_id: "b".into(),
        owner: "alice".into(),
        status,
        at,
        total: 10,
        completed,
        failed: 0,
        model: model.map(Into::into),
        metadata: None,
    }
}

async fn an_older_event_cannot_overwrite_a_newer_one_and_start_and_end_keep_the_earliest(
    store: Store,
) {
    let model = Some("llama3.2:1b");
    store.record_batch_event(&event(BatchStatus::Validating, 500, 0, model)).await.unwrap();
    store.record_batch_event(&event(BatchStatus::InProgress, 2_000, 0, model)).await.unwrap();
    store.record_batch_event(&event(BatchStatus::Completed, 5_000, 10, None)).await.unwrap();
    // Late arrivals: an older progress step, an earlier start (a retried publish), and a
    // repeated final step.
    store.record_batch_event(&event(BatchStatus::InProgress, 3_000, 4, model)).await.unwrap();
    store.record_batch_event(&event(BatchStatus::InProgress, 1_000, 0, model)).await.unwrap();
    store.record_batch_event(&event(BatchStatus::Completed, 6_000, 10, None)).await.unwrap();

    let b = store.batch("b").await.unwrap().unwrap();

    assert_eq!((b.batch_id.as_str(), b.owner.as_str()), ("b", "alice"));
    assert_eq!((b.status.as_str(), b.total, b.completed, b.failed), ("completed", 10, 10, 0));
    // A step without a model keeps the one known.
    assert_eq!(b.model.as_deref(), Some("llama3.2:1b"));
    assert_eq!((b.started_at, b.ended_at), (Some(1_000), Some(5_000)));
    assert!(store.batch("nope").await.unwrap().is_none());
}

async fn a_reload_is_stored_once_and_found_by_batch_or_time_window(store: Store) {
    let reload = |at: i64, batch_id: Option<&str>| ModelReload {
        worker_id: "w1".into(),
        model: "llama3.2:1b".into(),
        at,
        load_ms: 1_500.5,
        batch_id: batch_id.map(Into::into),
    };
    assert!(store.record_reload(&reload(1_000, Some("b"))).await.unwrap());
    assert!(!store.record_reload(&reload(1_000, Some("b"))).await.unwrap(), "a redelivery");
    assert!(store.record_reload(&reload(2_000, None)).await.unwrap());
    assert!(store.record_reload(&reload(9_000, None)).await.unwrap());
    assert!(store.record_reload(&reload(3_000, Some("other"))).await.unwrap());

    let tagged = store.reloads("b", None, None).await.unwrap();
    let stored = ReloadRow {
        worker_id: "w1".into(),
        model: "llama3.2:1b".into(),
        at: 1_000,
        load_ms: 1_500.5,
        batch_id: Some("b".into()),
    };
    assert_eq!(tagged, [stored]);

    let windowed = store.reloads("b", Some(0), Some(5_000)).await.unwrap();
    let at: Vec<_> = windowed.iter().map(|r| (r.at, r.batch_id.clone())).collect();
    assert_eq!(at, [(1_000, Some("b".into())), (2_000, None)]);
}
