//! Health, readiness, metrics and unknown routes.

use crate::helpers::{assert_error, chat_file, spawn_app};
use serde_json::Value;
use sqlx::PgPool;

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn health_and_readiness_report_their_dependencies(pool: PgPool) {
    let app = spawn_app(pool).await;
    let health = app.get("/healthz").send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.get("/readyz").send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!((body["postgres"].as_str(), body["nats"].as_str()), (Some("ok"), Some("ok")));
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn readiness_fails_when_nats_is_down(pool: PgPool) {
    let mut app = spawn_app(pool).await;
    app.nats.kill();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let ready = app.get("/readyz").send().await.unwrap();
        if ready.status() == 503 {
            let body: Value = ready.json().await.unwrap();
            assert_eq!(body["postgres"], "ok");
            assert_ne!(body["nats"], "ok");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "readyz never noticed NATS was down");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn metrics_count_what_the_gateway_did(pool: PgPool) {
    let app = spawn_app(pool).await;
    let batch = app.submit(chat_file(250)).await;
    app.wait_for(&batch.id, nightshift_shared::openai::BatchStatus::InProgress).await;
    let text = app.get("/metrics").send().await.unwrap().text().await.unwrap();
    assert!(text.contains("nightshift_gateway_files_uploaded_total 1"), "{text}");
    assert!(text.contains("nightshift_gateway_batches_created_total 1"), "{text}");
    assert!(text.contains("nightshift_gateway_requests_validated_total 250"), "{text}");
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn unknown_routes_are_404_in_openai_shape(pool: PgPool) {
    let app = spawn_app(pool).await;
    let response = app.get("/v1/nothing").send().await.unwrap();
    let message = assert_error(response, 404, Some("not_found"), None).await;
    assert_eq!(message, "Unknown request URL: GET /v1/nothing.");
}
