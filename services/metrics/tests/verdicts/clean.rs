//! A clean run: every criterion passes.

use crate::helpers::*;
use sqlx::PgPool;

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn clean_three_batch_run_passes_every_criterion(pool: PgPool) {
    let sim = steady_sim();
    let run = Run::start_timed(pool, sim.clone(), &[]).await;

    let batches = run.batches(3, STEADY_REQUESTS).await;
    let report = run.report(&batches).await;

    assert_eq!(report["pass"], true, "{report}");
    assert_eq!(report["failures"], serde_json::json!([]));
    for criterion in ["vram", "throughput", "model_reloads", "success"] {
        assert_passes(&report, criterion);
    }
    let n = (3 * STEADY_REQUESTS) as u64;
    let totals = &report["totals"];
    assert_eq!((totals["requests"].as_u64(), totals["completed"].as_u64()), (Some(n), Some(n)));
    assert_eq!(totals["failed"], 0);
    assert_eq!(totals["error_types"], serde_json::json!([]));
    assert_near(&report["success"]["success_pct"], 100.0, 1e-9, "success %");
    assert_eq!(report["model_reloads"]["total"], 0);
    assert!(num(&report["throughput"]["variance_pct"]) < 10.0, "{}", report["throughput"]);
    for (line, done) in report["batches"].as_array().unwrap().iter().zip(&batches) {
        assert_eq!(line["batch_id"], done.batch.id.as_str());
        assert_eq!(
            (line["status"].as_str(), line["model"].as_str()),
            (Some("completed"), Some(MODEL))
        );
        assert_eq!(line["model_reloads"], 0);
        assert_eq!(line["completed"], STEADY_REQUESTS);
    }
    if Run::reads_sim_vram(&report) {
        assert_near(&report["vram"]["delta_gb"], 0.0, 1e-9, "VRAM delta");
        assert!(report["vram"]["warning"].is_null(), "{}", report["vram"]);
        for line in report["batches"].as_array().unwrap() {
            assert_near(&line["vram_delta_gb"], 0.0, 1e-9, "a batch's VRAM delta");
        }
        assert_near(&report["vram"]["start_gb"], model_gb(&sim), 1e-9, "VRAM at start");
        assert_near(&report["vram"]["end_gb"], model_gb(&sim), 1e-9, "VRAM at end");
    }
    run.shutdown().await;
}
