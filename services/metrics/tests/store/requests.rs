//! Request rows: the batch summary (counts, latency figures, tokens, workers) and error types.

use crate::helpers::*;
use nightshift_metrics::store::Store;
use nightshift_shared::messages::TokenUsage;

nightshift_testkit::on_both_databases!(
    summary_counts_means_and_percentiles_are_hand_computed_figures,
    a_re_reported_line_overwrites_its_row,
    a_batch_without_requests_has_no_figures,
);

/// Lines 0..=9 reached the backend with latencies 100, 200, ..., 1000 ms (written out of
/// order, in two chunks by two workers); line 10 was rejected before it (no attempt). Lines 3
/// and 8 timed out, line 7 got a 400.
async fn summary_counts_means_and_percentiles_are_hand_computed_figures(store: Store) {
    let failed = |line: u32| match line {
        3 | 8 => Some("backend_timeout"),
        7 => Some("http_400"),
        _ => None,
    };
    let report = |line: u32| {
        let mut r = request(line, 100.0 * f64::from(line + 1), failed(line));
        r.queue_wait_ms = f64::from(line);
        if line < 2 {
            r.usage = Some(TokenUsage {
                prompt_tokens: Some(10),
                completion_tokens: Some(20),
                cached_tokens: Some(4),
            });
        }
        r
    };
    let mut rejected = request(10, 0.0, Some("invalid_request"));
    rejected.attempts = 0;
    let second = vec![report(9), report(5), rejected, report(7), report(6), report(8)];
    store.record_chunk(&chunk("b", 1, "w1", second)).await.unwrap();
    let first = vec![report(4), report(0), report(2), report(1), report(3)];
    store.record_chunk(&chunk("b", 0, "w2", first)).await.unwrap();

    let s = store.request_summary("b").await.unwrap();

    assert_eq!((s.reported, s.succeeded, s.failed), (11, 7, 4));
    // Over the 10 requests that reached the backend; the rejected one's 0 ms is left out.
    assert_close(s.latency_mean_ms, 550.0);
    assert_close(s.latency_max_ms, 1000.0);
    assert_close(s.queue_wait_mean_ms, 4.5);
    // percentile_cont: linear interpolation at p × (n − 1) over 100..=1000: 4.5 → 550,
    // 8.55 → 900 + 0.55 × 100, 8.91 → 900 + 0.91 × 100.
    assert_close(s.latency_p50_ms, 550.0);
    assert!((s.latency_p95_ms.unwrap() - 955.0).abs() < 1e-6, "{:?}", s.latency_p95_ms);
    assert!((s.latency_p99_ms.unwrap() - 991.0).abs() < 1e-6, "{:?}", s.latency_p99_ms);
    // 7 successes × 10 prompt / 20 completion tokens; only lines 0 and 1 know cached tokens.
    assert_eq!((s.prompt_tokens, s.completion_tokens), (Some(70), Some(140)));
    assert_eq!((s.cached_tokens, s.prompt_tokens_with_cached), (Some(8), Some(20)));
    assert_eq!(s.workers, ["w1", "w2"]);

    let errors = store.error_types("b").await.unwrap();
    assert_eq!(
        errors,
        [("backend_timeout".into(), 2), ("http_400".into(), 1), ("invalid_request".into(), 1)]
    );
}

async fn a_re_reported_line_overwrites_its_row(store: Store) {
    let first = vec![request(0, 100.0, Some("backend_timeout")), request(1, 200.0, None)];
    store.record_chunk(&chunk("b", 0, "w1", first)).await.unwrap();

    // A redelivered chunk run by another worker; line 0 is reported twice, the last one counts.
    let mut again = chunk(
        "b",
        0,
        "w2",
        vec![request(0, 900.0, Some("http_500")), request(0, 300.0, None), request(1, 400.0, None)],
    );
    again.delivery = 2;
    store.record_chunk(&again).await.unwrap();

    let s = store.request_summary("b").await.unwrap();
    assert_eq!((s.reported, s.succeeded, s.failed), (2, 2, 0));
    assert_close(s.latency_mean_ms, 350.0);
    assert_close(s.latency_max_ms, 400.0);
    assert_eq!(s.prompt_tokens, Some(20));
    assert_eq!(s.workers, ["w2"]);
    assert!(store.error_types("b").await.unwrap().is_empty());
}

async fn a_batch_without_requests_has_no_figures(store: Store) {
    store.record_chunk(&chunk("other", 0, "w1", vec![request(0, 100.0, None)])).await.unwrap();
    store.record_chunk(&chunk("b", 0, "w1", vec![])).await.unwrap();

    let s = store.request_summary("b").await.unwrap();

    assert_eq!((s.reported, s.succeeded, s.failed), (0, 0, 0));
    assert_eq!((s.latency_mean_ms, s.latency_p50_ms, s.latency_p99_ms), (None, None, None));
    assert_eq!((s.latency_max_ms, s.queue_wait_mean_ms), (None, None));
    assert_eq!((s.prompt_tokens, s.cached_tokens, s.prompt_tokens_with_cached), (None, None, None));
    assert!(s.workers.is_empty());
    assert!(store.error_types("b").await.unwrap().is_empty());
}
