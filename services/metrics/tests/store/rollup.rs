//! The rollup of old GPU samples into per-minute aggregates.

use crate::helpers::*;
use nightshift_metrics::store::Store;
use nightshift_shared::on_db;

nightshift_testkit::on_both_databases!(
    rollup_folds_old_samples_into_minutes_and_keeps_batch_samples_raw_longer,
    a_later_rollup_merges_into_the_minute_already_folded,
    two_rollups_at_once_fold_every_sample_once,
);

/// A minute boundary.
const M: i64 = 100 * 60_000;

/// `(minute, samples, min, max, avg, last, last_at)` of every per-minute row.
async fn minutes(store: &Store) -> Vec<(i64, i64, i64, i64, f64, i64, i64)> {
    on_db!(store.db(), pool => sqlx::query_as(
        "SELECT minute, samples, min_used_bytes, max_used_bytes, avg_used_bytes, \
         last_used_bytes, last_at FROM metrics_gpu_minutes ORDER BY minute",
    )
    .fetch_all(pool)
    .await)
    .unwrap()
}

async fn record(store: &Store, at: i64, gib: u64, batch_id: Option<&str>) {
    store.record_gpu_sample(&gpu_sample("w1", "GPU-1", at, gib * GIB, batch_id)).await.unwrap();
}

fn gib(n: u64) -> i64 {
    (n * GIB) as i64
}

async fn rollup_folds_old_samples_into_minutes_and_keeps_batch_samples_raw_longer(store: Store) {
    record(&store, M, 1, None).await;
    record(&store, M + 1_000, 3, None).await;
    record(&store, M + 2_000, 2, None).await;
    record(&store, M + 3_000, 4, Some("b")).await;
    record(&store, M + 60_000, 5, None).await;
    // Recent enough to stay raw.
    record(&store, M + 200_000, 7, None).await;

    let moved = store.rollup(M + 120_000, 0).await.unwrap();

    assert_eq!(moved, 4, "the batch's sample and the recent one stay raw");
    assert_eq!(
        minutes(&store).await,
        [
            (M, 3, gib(1), gib(3), gib(2) as f64, gib(2), M + 2_000),
            (M + 60_000, 1, gib(5), gib(5), gib(5) as f64, gib(5), M + 60_000),
        ]
    );
    // A minute reads as one point at its last sample: last reading, and the peak it stands for.
    let points = store.gpu_points(M, M + 300_000, &[]).await.unwrap();
    let seen: Vec<_> = points.iter().map(|p| (p.at, p.used_bytes, p.peak_bytes)).collect();
    assert_eq!(
        seen,
        [
            (M + 2_000, gib(2), gib(3)),
            (M + 3_000, gib(4), gib(4)),
            (M + 60_000, gib(5), gib(5)),
            (M + 200_000, gib(7), gib(7)),
        ]
    );
    assert_eq!(store.gpu_points(M, M + 300_000, &["w1".into()]).await.unwrap(), points);
    assert!(store.gpu_points(M, M + 300_000, &["w2".into()]).await.unwrap().is_empty());
    assert_eq!(store.rollup(M + 120_000, 0).await.unwrap(), 0, "nothing left to fold");
}

async fn a_later_rollup_merges_into_the_minute_already_folded(store: Store) {
    for (offset, n) in [(0, 1), (1_000, 3), (2_000, 2)] {
        record(&store, M + offset, n, None).await;
    }
    assert_eq!(store.rollup(M + 60_000, 0).await.unwrap(), 3);
    // Late samples of the same minute: a newer one, and an older batch-tagged one.
    record(&store, M + 30_000, 6, None).await;
    record(&store, M + 500, 4, Some("b")).await;

    assert_eq!(store.rollup(M + 60_000, 0).await.unwrap(), 1);
    assert_eq!(minutes(&store).await, [(M, 4, gib(1), gib(6), gib(3) as f64, gib(6), M + 30_000)]);

    assert_eq!(store.rollup(M + 60_000, M + 60_000).await.unwrap(), 1);
    let [(_, samples, min, max, avg, last, last_at)] = minutes(&store).await[..] else {
        panic!("one minute");
    };
    assert_eq!((samples, min, max), (5, gib(1), gib(6)));
    // (3 GiB × 4 + 4 GiB) / 5; the older sample does not replace the last reading.
    assert!((avg - 3.2 * GIB as f64).abs() < 1.0, "avg {avg}");
    assert_eq!((last, last_at), (gib(6), M + 30_000));
}

/// Two metrics replicas rolling up at the same time: each sample is folded by one of them.
async fn two_rollups_at_once_fold_every_sample_once(store: Store) {
    for i in 0..400 {
        record(&store, M + i * 700, 1 + (i as u64 % 5), None).await;
    }
    let (a, b) = (store.clone(), store.clone());
    let (moved_a, moved_b) = tokio::join!(a.rollup(M + 3_600_000, 0), b.rollup(M + 3_600_000, 0));
    assert_eq!(moved_a.unwrap() + moved_b.unwrap(), 400);
    let folded: i64 = minutes(&store).await.iter().map(|m| m.1).sum();
    assert_eq!(folded, 400, "a sample was folded twice or not at all");
}
