//! A backend that slows down fails the variance criterion; the batches before it pass it.

use crate::helpers::*;
use ollama_sim::SimConfig;
use sqlx::PgPool;

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn throttled_third_batch_fails_variance_that_the_first_two_pass(pool: PgPool) {
    // Every request after the first two batches' takes twice as long.
    let sim = SimConfig {
        throttle_after: Some(2 * STEADY_REQUESTS as u64),
        throttle_factor: 2.0,
        ..steady_sim()
    };
    let run = Run::start_timed(pool, sim, &[]).await;

    let batches = run.batches(3, STEADY_REQUESTS).await;
    let steady = run.report(&batches[..2]).await;
    let throttled = run.report(&batches).await;

    assert_passes(&steady, "throughput");
    assert!(num(&steady["throughput"]["variance_pct"]) < 10.0, "{}", steady["throughput"]);
    assert_eq!(steady["pass"], true, "{steady}");

    let reason = failure(&throttled, "throughput");
    let rates: Vec<f64> = throttled["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| num(&l["throughput_rps"]))
        .collect();
    // Half the speed: about 50% below the fastest batch.
    let variance = num(&throttled["throughput"]["variance_pct"]);
    assert!((30.0..70.0).contains(&variance), "{}", throttled["throughput"]);
    assert!(rates[2] < 0.7 * rates[0].min(rates[1]), "{rates:?}");
    assert_near(&throttled["throughput"]["min_rps"], rates[2], 1e-9, "slowest batch");
    assert!(reason.contains(&format!("throughput varies by {variance:.1}%")), "{reason}");
    assert!(reason.contains(&format!("{:.3} to", rates[2])), "{reason}");
    // Slower, not broken: nothing else fails.
    for criterion in ["vram", "model_reloads", "success"] {
        assert_passes(&throttled, criterion);
    }
    assert_eq!(throttled["failures"].as_array().unwrap().len(), 1, "{throttled}");
    run.shutdown().await;
}
