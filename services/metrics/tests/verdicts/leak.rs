//! A backend that leaks VRAM with every request fails the leak criterion by what it leaked.

use crate::helpers::*;
use ollama_sim::SimConfig;
use sqlx::PgPool;

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn leaking_backend_fails_the_vram_criterion_with_the_leaked_amount(pool: PgPool) {
    let leak_mb = 2.0;
    let requests = 200;
    let sim = SimConfig { vram_leak_mb_per_request: leak_mb, ..quick_sim() };
    let run = Run::start(pool, sim.clone(), &[]).await;

    let batches = run.batches(3, requests).await;
    let report = run.report(&batches).await;

    if !Run::reads_sim_vram(&report) {
        run.shutdown().await;
        return;
    }
    // 2 MiB × 200 requests = 0.39 GB a batch, 1.17 GB over the three.
    let per_batch = leak_mb * requests as f64 / 1024.0;
    let vram = &report["vram"];
    assert_near(&vram["start_gb"], model_gb(&sim), 1e-6, "VRAM before the first batch");
    assert_near(&vram["delta_gb"], 3.0 * per_batch, 1e-3, "VRAM delta of the run");
    assert_near(&vram["end_gb"], model_gb(&sim) + 3.0 * per_batch, 1e-3, "VRAM after");
    assert_near(&vram["trend_gb_per_batch"], per_batch, 1e-3, "VRAM trend");
    let reason = failure(&report, "vram");
    assert!(reason.contains("VRAM grew by +1.17 GB"), "{reason}");
    assert!(vram["warning"].as_str().unwrap().contains("+1.17 GB"), "{vram}");
    for (line, done) in report["batches"].as_array().unwrap().iter().zip(&batches) {
        assert_near(&line["vram_delta_gb"], per_batch, 1e-3, "a batch's VRAM delta");
        let bytes = done.metrics["vram"]["delta_bytes"].as_i64().unwrap();
        assert_eq!(bytes, (leak_mb * requests as f64) as i64 * 1024 * 1024, "leaked bytes");
    }
    // The leak is the only fault: the model stayed loaded and every request succeeded.
    assert_passes(&report, "model_reloads");
    assert_passes(&report, "success");
    run.shutdown().await;
}
