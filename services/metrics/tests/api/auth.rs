//! API keys: `/v1` needs one when keys are set, and a batch's metrics belong to its owner.

use crate::helpers::*;
use nightshift_shared::auth::owner_of;
use sqlx::PgPool;

#[sqlx::test(migrator = "nightshift_metrics::store::MIGRATOR")]
async fn keys_guard_v1_and_each_owner_sees_only_its_batches(pool: PgPool) {
    let app = spawn_app_with(pool, &["--api-keys", "key-one,key-two"]).await;
    let mut mine = Plan::new("b_one", 0, 10, 0.2);
    mine.owner = owner_of("key-one");
    let mut theirs = Plan::new("b_two", 100, 10, 0.2);
    theirs.owner = owner_of("key-two");
    app.run(&mine).await;
    app.run(&theirs).await;
    app.settle().await;

    let anonymous = app.get("/v1/batches/b_one/metrics").send().await.unwrap();
    assert_error(anonymous, 401, None).await;
    let wrong = app.get("/v1/gpus").bearer_auth("nope").send().await.unwrap();
    assert_error(wrong, 401, Some("invalid_api_key")).await;
    let anonymous_gpus = app.get("/v1/gpus").send().await.unwrap();
    assert_error(anonymous_gpus, 401, None).await;
    let anonymous_report = app.get("/v1/reports/multi-batch?batch_id=b_one").send().await.unwrap();
    assert_error(anonymous_report, 401, None).await;

    let app = app.with_key("key-one");
    assert_eq!(app.batch_metrics("b_one").await["batch_id"], "b_one");
    let other = app.get("/v1/batches/b_two/metrics").send().await.unwrap();
    assert_error(other, 404, Some("not_found")).await;
    let report =
        app.get("/v1/reports/multi-batch?batch_id=b_one&batch_id=b_two").send().await.unwrap();
    let message = assert_error(report, 404, Some("not_found")).await;
    assert!(message.contains("b_two"), "{message}");
    let own = app.get_json("/v1/reports/multi-batch?batch_id=b_one").await;
    assert_eq!(own["totals"]["batches"], 1);
    assert_eq!(app.get_json("/v1/gpus").await["object"], "list");

    // Health and Prometheus metrics stay open.
    let app = app.with_key("");
    let health = app.client.get(format!("{}/healthz", app.url)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let metrics = app.client.get(format!("{}/metrics", app.url)).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
}
