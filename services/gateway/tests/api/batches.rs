//! `/v1/batches`: create, chunking onto JetStream, retrieve, list, cancel.

use crate::helpers::{assert_error, chat_file, spawn_app, spawn_app_with};
use nightshift_shared::messages::BatchControl;
use nightshift_shared::openai::{Batch, BatchStatus, List};
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn valid_batch_is_chunked_onto_jetstream_in_input_order(pool: PgPool) {
    let app = spawn_app_with(pool, &["--chunk-size", "100"]).await;
    let file = app.upload_ok(chat_file(250)).await;
    let response = app
        .create_batch(json!({
            "input_file_id": file.id,
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
            "metadata": {"test_batch_num": "1"},
        }))
        .await;
    assert_eq!(response.status(), 200);
    let created: Batch = response.json().await.unwrap();
    assert_eq!(created.status, BatchStatus::Validating);
    assert!(created.id.starts_with("batch_"));
    assert_eq!(created.object, "batch");
    assert_eq!(created.expires_at, Some(created.created_at + 24 * 3600));
    assert_eq!(created.metadata.as_ref().unwrap()["test_batch_num"], "1");

    let batch = app.wait_for(&created.id, BatchStatus::InProgress).await;
    assert_eq!(batch.request_counts.total, 250);
    assert_eq!((batch.request_counts.completed, batch.request_counts.failed), (0, 0));
    assert_eq!(batch.model.as_deref(), Some("llama3.2:1b"));
    assert!(batch.in_progress_at.is_some() && batch.errors.is_none());

    let chunks = wait_for_chunks(&app, 3).await;
    assert_eq!(chunks.iter().map(|c| c.requests.len()).collect::<Vec<_>>(), [100, 100, 50]);
    assert_eq!(chunks.iter().map(|c| c.chunk_index).collect::<Vec<_>>(), [0, 1, 2]);
    let ids: Vec<String> =
        chunks.iter().flat_map(|c| c.requests.iter().map(|r| r.custom_id.clone())).collect();
    assert_eq!(ids, (0..250).map(|i| format!("req-{i}")).collect::<Vec<_>>());
    let first = &chunks[0].requests[0];
    assert_eq!(first.line, 1);
    let body: serde_json::Value = serde_json::from_str(first.body.get()).unwrap();
    assert_eq!(body["messages"][0]["content"], "Say 0");
    assert!(
        chunks.iter().all(|c| c.batch_id == batch.id && c.expires_at == created.created_at + 86400)
    );
}

async fn wait_for_chunks(
    app: &crate::helpers::TestApp,
    n: usize,
) -> Vec<nightshift_shared::messages::ChunkMessage> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let chunks = app.chunk_messages().await;
        if chunks.len() >= n {
            assert_eq!(chunks.len(), n);
            return chunks;
        }
        assert!(std::time::Instant::now() < deadline, "only {} chunks published", chunks.len());
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn create_rejects_each_bad_parameter_by_name(pool: PgPool) {
    let app = spawn_app(pool).await;
    let file = app.upload_ok(chat_file(1)).await;
    let ok = json!({"input_file_id": file.id, "endpoint": "/v1/chat/completions", "completion_window": "24h"});
    let with = |key: &str, value: serde_json::Value| {
        let mut body = ok.clone();
        body[key] = value;
        body
    };
    let without = |key: &str| {
        let mut body = ok.clone();
        body.as_object_mut().unwrap().remove(key);
        body
    };
    let too_many: serde_json::Map<_, _> = (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases = [
        (without("input_file_id"), "missing_required_parameter", "input_file_id"),
        (without("endpoint"), "missing_required_parameter", "endpoint"),
        (without("completion_window"), "missing_required_parameter", "completion_window"),
        (with("endpoint", json!("/v1/responses")), "invalid_value", "endpoint"),
        (with("completion_window", json!("48h")), "invalid_value", "completion_window"),
        (with("input_file_id", json!(5)), "invalid_type", "input_file_id"),
        (with("metadata", json!(too_many)), "invalid_value", "metadata"),
        (with("metadata", json!({"k": 1})), "invalid_value", "metadata"),
        (with("metadata", json!({"k".repeat(65): "v"})), "invalid_value", "metadata"),
        (with("metadata", json!("x")), "invalid_type", "metadata"),
    ];
    for (body, code, param) in cases {
        let response = app.create_batch(body.clone()).await;
        assert_error(response, 400, Some(code), Some(param)).await;
    }
    let response = app.create_batch(with("input_file_id", json!("file-missing"))).await;
    let message = assert_error(response, 404, Some("not_found"), None).await;
    assert_eq!(message, "No such File object: file-missing");

    let response = app.post("/v1/batches").body("{not json").send().await.unwrap();
    assert_error(response, 400, None, None).await;

    let list: List<Batch> = app.get("/v1/batches").send().await.unwrap().json().await.unwrap();
    assert!(list.data.is_empty(), "no batch may be created by a rejected request");
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn batches_list_newest_first_with_cursor_pagination(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.submit(chat_file(2)).await.id);
    }
    let page: List<Batch> =
        app.get("/v1/batches?limit=2").send().await.unwrap().json().await.unwrap();
    assert_eq!(page.object, "list");
    assert!(page.has_more);
    assert_eq!(page.data.iter().map(|b| &b.id).collect::<Vec<_>>(), [&ids[2], &ids[1]]);
    assert_eq!((page.first_id.as_ref(), page.last_id.as_ref()), (Some(&ids[2]), Some(&ids[1])));
    let rest: List<Batch> = app
        .get(&format!("/v1/batches?limit=2&after={}", ids[1]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!rest.has_more);
    assert_eq!(rest.data.iter().map(|b| &b.id).collect::<Vec<_>>(), [&ids[0]]);

    let response = app.get("/v1/batches?limit=0").send().await.unwrap();
    assert_error(response, 400, Some("invalid_value"), Some("limit")).await;
    let response = app.get("/v1/batches?limit=101").send().await.unwrap();
    assert_error(response, 400, Some("invalid_value"), Some("limit")).await;
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn cancel_moves_a_running_batch_to_cancelling_and_tells_workers(pool: PgPool) {
    let app = spawn_app(pool).await;
    let batch = app.submit(chat_file(10)).await;
    app.wait_for(&batch.id, BatchStatus::InProgress).await;
    wait_for_chunks(&app, 1).await;

    let response = app.post(&format!("/v1/batches/{}/cancel", batch.id)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let cancelling: Batch = response.json().await.unwrap();
    assert_eq!(cancelling.status, BatchStatus::Cancelling);
    assert!(cancelling.cancelling_at.is_some());

    // The signal goes out in the background (the API answers while NATS may be unreachable).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let control = loop {
        let last = app
            .state
            .queue
            .last_on_subject(
                nightshift_shared::subjects::CONTROL_STREAM,
                &nightshift_shared::subjects::control_subject(&batch.id),
            )
            .await
            .unwrap();
        match last {
            Some(control) => break control,
            None if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            None => panic!("no control signal within 5 s of the cancel"),
        }
    };
    assert_eq!(serde_json::from_slice::<BatchControl>(&control).unwrap(), BatchControl::Cancelled);

    // Cancelling again changes nothing and is not an error.
    let again = app.post(&format!("/v1/batches/{}/cancel", batch.id)).send().await.unwrap();
    assert_eq!(again.status(), 200);
    let again: Batch = again.json().await.unwrap();
    assert_eq!(again.cancelling_at, cancelling.cancelling_at);
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn cancelling_a_finished_batch_is_a_409_and_unknown_batches_are_404(pool: PgPool) {
    let app = spawn_app(pool).await;
    let failed = app.submit(b"not json\n".to_vec()).await;
    app.wait_for(&failed.id, BatchStatus::Failed).await;
    let response = app.post(&format!("/v1/batches/{}/cancel", failed.id)).send().await.unwrap();
    let message = assert_error(response, 409, Some("conflict"), None).await;
    assert_eq!(message, "Cannot cancel a batch with status 'failed'.");

    for response in [
        app.get("/v1/batches/batch_nope").send().await.unwrap(),
        app.post("/v1/batches/batch_nope/cancel").send().await.unwrap(),
    ] {
        let message = assert_error(response, 404, Some("not_found"), None).await;
        assert_eq!(message, "No such Batch object: batch_nope");
    }
}
