//! GPU samples: the latest reading per GPU, and the points in a time range, by worker.

use crate::helpers::*;
use nightshift_metrics::store::Store;

nightshift_testkit::on_both_databases!(
    the_latest_reading_of_each_gpu_wins_even_when_an_older_one_arrives_late,
    gpu_points_are_every_reading_in_range_oldest_first_filtered_by_worker,
);

async fn the_latest_reading_of_each_gpu_wins_even_when_an_older_one_arrives_late(store: Store) {
    store.record_gpu_sample(&gpu_sample("w1", "GPU-1", 2_000, 3 * GIB, None)).await.unwrap();
    store.record_gpu_sample(&gpu_sample("w1", "GPU-1", 1_000, GIB, None)).await.unwrap();
    store.record_gpu_sample(&gpu_sample("w2", "GPU-2", 1_500, 2 * GIB, None)).await.unwrap();

    let gpus = store.gpus_now().await.unwrap();

    let seen: Vec<_> = gpus
        .iter()
        .map(|g| (g.host.as_str(), g.gpu.as_str(), g.worker_id.as_str(), g.at, g.memory_used_bytes))
        .collect();
    let (one, two) = ((3 * GIB) as i64, (2 * GIB) as i64);
    assert_eq!(seen, [("h-w1", "GPU-1", "w1", 2_000, one), ("h-w2", "GPU-2", "w2", 1_500, two)]);
    let g = &gpus[0];
    assert_eq!((g.name.as_str(), g.source.as_str()), ("NVIDIA H100", "nvml"));
    assert_eq!(g.memory_total_bytes, Some((80 * GIB) as i64));
    assert_eq!(g.memory_free_bytes, Some((77 * GIB) as i64));
    assert_eq!((g.utilization_pct, g.temperature_c), (Some(50), Some(60)));
}

async fn gpu_points_are_every_reading_in_range_oldest_first_filtered_by_worker(store: Store) {
    for (worker, gpu, at, gib) in
        [("w1", "GPU-1", 1_000, 1), ("w2", "GPU-2", 1_500, 2), ("w1", "GPU-1", 2_000, 3)]
    {
        let sample = gpu_sample(worker, gpu, at, gib * GIB, None);
        store.record_gpu_sample(&sample).await.unwrap();
        // A redelivered sample is stored once.
        store.record_gpu_sample(&sample).await.unwrap();
    }
    store.record_gpu_sample(&gpu_sample("w3", "GPU-3", 9_000, GIB, None)).await.unwrap();
    let at_and_gpu = |points: Vec<nightshift_metrics::store::read::GpuPoint>| {
        points.into_iter().map(|p| (p.at, p.gpu_uuid)).collect::<Vec<_>>()
    };

    let all = store.gpu_points(1_000, 2_000, &[]).await.unwrap();
    let p = &all[0];
    assert_eq!(
        (p.host.as_str(), p.gpu_name.as_str(), p.source.as_str()),
        ("h-w1", "NVIDIA H100", "nvml")
    );
    assert_eq!((p.used_bytes, p.peak_bytes), (GIB as i64, GIB as i64));
    assert_eq!(p.total_bytes, Some((80 * GIB) as i64));
    assert_eq!(
        at_and_gpu(all),
        [(1_000, "GPU-1".into()), (1_500, "GPU-2".into()), (2_000, "GPU-1".into())]
    );

    let w1 = store.gpu_points(0, 10_000, &["w1".into()]).await.unwrap();
    assert_eq!(at_and_gpu(w1), [(1_000, "GPU-1".into()), (2_000, "GPU-1".into())]);
    let some = store.gpu_points(0, 10_000, &["w2".into(), "w3".into()]).await.unwrap();
    assert_eq!(at_and_gpu(some), [(1_500, "GPU-2".into()), (9_000, "GPU-3".into())]);
    assert!(store.gpu_points(0, 10_000, &["nobody".into()]).await.unwrap().is_empty());
}
