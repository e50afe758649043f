//! Every client mistake is a 4xx in OpenAI's error shape: NUL characters in ids and parameters,
//! paths that are not UTF-8 and unmatched methods never reach the database as a 500.

use crate::helpers::{assert_error, spawn_app};
use sqlx::PgPool;

#[sqlx::test(migrator = "nightshift_metrics::store::MIGRATOR")]
async fn nul_and_invalid_utf8_in_the_url_are_400s(pool: PgPool) {
    let app = spawn_app(pool).await;
    for path in [
        "/v1/batches/batch_%00/metrics",
        "/v1/reports/multi-batch?batch_id=batch_%00",
        "/v1/reports/multi-batch?batch_id=a&max_variance_pct=%00",
    ] {
        let response = app.get(path).send().await.unwrap();
        let message = assert_error(response, 400, Some("invalid_value")).await;
        assert!(message.contains("NUL"), "{path}: {message}");
    }
    let response = app.get("/v1/batches/%FF/metrics").send().await.unwrap();
    let message = assert_error(response, 400, Some("invalid_value")).await;
    assert!(message.contains("UTF-8"), "{message}");
    assert_eq!(app.get("/v1/gpus").send().await.unwrap().status(), 200);
}

#[sqlx::test(migrator = "nightshift_metrics::store::MIGRATOR")]
async fn a_wrong_method_is_a_405_in_openai_shape(pool: PgPool) {
    let app = spawn_app(pool).await;
    let response = app.client.post(format!("{}/v1/gpus", app.url)).send().await.unwrap();
    let message = assert_error(response, 405, Some("method_not_allowed")).await;
    assert!(message.contains("POST"), "{message}");
}
