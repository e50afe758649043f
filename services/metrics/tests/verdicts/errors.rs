//! A backend that fails requests lowers the success rate, with the error types listed.

use crate::helpers::*;
use ollama_sim::SimConfig;
use sqlx::PgPool;

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn injected_backend_errors_fail_the_success_rate_with_their_types(pool: PgPool) {
    let requests = 200u64;
    let sim = SimConfig { error_rate: 0.1, fault_seed: 7, ..quick_sim() };
    let run = Run::start(pool, sim, &["--max-attempts", "1"]).await;

    let batches = run.batches(3, requests as usize).await;
    let report = run.report(&batches).await;

    let reason = failure(&report, "success");
    let lines = report["batches"].as_array().unwrap();
    let mut failed_total = 0;
    let mut lowest = f64::MAX;
    for (line, done) in lines.iter().zip(&batches) {
        let counts = &done.batch.request_counts;
        assert!(counts.failed > 0, "no injected error reached batch {}", done.batch.id);
        assert_eq!(counts.completed + counts.failed, requests);
        failed_total += counts.failed;
        let errors = serde_json::json!([{"code": "backend_error", "count": counts.failed}]);
        assert_eq!(done.metrics["error_types"], errors);
        assert_eq!(line["error_types"], errors);
        assert_eq!(
            (line["completed"].as_u64(), line["failed"].as_u64()),
            (Some(counts.completed), Some(counts.failed))
        );
        let pct = counts.completed as f64 / requests as f64 * 100.0;
        assert_near(&line["success_pct"], pct, 1e-9, "a batch's success rate");
        lowest = lowest.min(pct);
        let listed = format!(
            "{} {pct:.2}% ({} failed: backend_error ×{})",
            done.batch.id, counts.failed, counts.failed
        );
        assert!(reason.contains(&listed), "{listed:?} not in {reason:?}");
    }
    // With one attempt each, every injected error is a failed request.
    assert_eq!(run.stack.sim.state.snapshot().counters.errors_injected, failed_total);
    let totals = &report["totals"];
    assert_eq!(totals["failed"], failed_total);
    assert_eq!(
        totals["error_types"],
        serde_json::json!([{"code": "backend_error", "count": failed_total}])
    );
    let all = 3 * requests;
    assert_near(
        &report["success"]["success_pct"],
        (all - failed_total) as f64 / all as f64 * 100.0,
        1e-9,
        "success %",
    );
    assert_near(&report["success"]["min_batch_success_pct"], lowest, 1e-9, "lowest batch");
    assert_passes(&report, "vram");
    assert_passes(&report, "model_reloads");
    run.shutdown().await;
}
