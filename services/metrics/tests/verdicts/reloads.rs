//! A backend that evicts the model mid-batch fails the model-persistence criterion with the
//! reloads the workers saw.

use crate::helpers::*;
use ollama_sim::SimConfig;
use sqlx::PgPool;
use std::collections::BTreeSet;

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn evicted_model_fails_persistence_with_the_reload_count(pool: PgPool) {
    // Evicted every 150 completions, reloaded in 200 ms: once in the middle of each batch of
    // 200. Workers call a load of 100 ms or more a reload.
    let sim = SimConfig { load_ms: 200, evict_every: Some(150), ..quick_sim() };
    let run = Run::start(pool, sim, &["--reload-threshold-ms", "100"]).await;

    let batches = run.batches(3, 200).await;
    let report = run.report(&batches).await;

    let sim = run.stack.sim.state.snapshot().counters;
    let reloads_done = sim.loads - 1; // the first load is the warm-up
    assert!(sim.evictions >= 3 && reloads_done >= 3, "{sim:?}");
    let total = report["model_reloads"]["total"].as_u64().unwrap();
    assert!(total >= reloads_done, "{total} reloads reported, {reloads_done} happened");
    // What the workers published, as the service keys it (one per worker, model and instant).
    let published = run.published_reloads().await;
    let distinct: BTreeSet<_> =
        published.iter().map(|r| (r.worker_id.clone(), r.model.clone(), r.at)).collect();
    assert_eq!(total, distinct.len() as u64, "{published:?}");

    let reason = failure(&report, "model_reloads");
    assert!(reason.contains(&format!("reloaded {total} times")), "{reason}");
    let lines = report["batches"].as_array().unwrap();
    let mut per_batch = 0;
    for (line, done) in lines.iter().zip(&batches) {
        let count = line["model_reloads"].as_u64().unwrap();
        assert!(count >= 1, "batch {} had an eviction mid-batch: {line}", line["index"]);
        per_batch += count;
        let id = done.batch.id.as_str();
        assert!(reason.contains(&format!("({id}): {count}")), "{reason}");
        let listed = &done.metrics["model_reloads"];
        assert_eq!(listed["count"], count);
        for reload in listed["reloads"].as_array().unwrap() {
            assert_eq!(reload["model"], MODEL);
            assert!(num(&reload["load_ms"]) >= 100.0, "{reload}");
        }
    }
    assert_eq!(per_batch, total);
    // Reloads cost time, not requests.
    assert_passes(&report, "success");
    run.shutdown().await;
}
