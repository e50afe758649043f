//! Result messages the database refuses: they never hold up other batches, nor come back forever,
//! and the batch they belong to still ends, the refused request failed with the reason.

use crate::helpers::{TestApp, chat_file, spawn_app};
use nightshift_shared::openai::{BatchStatus, OutputLine};
use nightshift_shared::subjects;
use serde_json::{Value, json};
use sqlx::PgPool;

fn result(batch_id: &str, line: u32, request_id: &str) -> Value {
    json!({
        "batch_id": batch_id, "chunk_index": 0, "line": line,
        "custom_id": format!("req-{}", line - 1), "request_id": request_id, "worker_id": "test",
        "outcome": {"response": {"status_code": 200, "body": {"object": "chat.completion"}}},
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "cached_tokens": null}
    })
}

async fn publish(app: &TestApp, batch_id: &str, results: Vec<Value>) {
    let client = async_nats::connect(app.nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let payload = serde_json::to_vec(&json!({ "results": results })).unwrap();
    js.publish(subjects::result_subject(batch_id, 0), payload.into()).await.unwrap().await.unwrap();
}

async fn lines(app: &TestApp, file_id: &Option<String>) -> Vec<OutputLine> {
    let Some(id) = file_id else { return Vec::new() };
    let text = app.get(&format!("/v1/files/{id}/content")).send().await.unwrap();
    text.text().await.unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn a_result_the_database_refuses_fails_its_request_and_holds_up_nothing(pool: PgPool) {
    let app = spawn_app(pool).await;
    let poisoned = app.submit(chat_file(3)).await;
    let neighbour = app.submit(chat_file(2)).await;
    app.wait_for(&poisoned.id, BatchStatus::InProgress).await;
    app.wait_for(&neighbour.id, BatchStatus::InProgress).await;

    // What a buggy or hostile publisher could send: a request id and a batch id holding NUL,
    // which Postgres text refuses, beside good results in the same round.
    publish(&app, "batch_\u{0}x", vec![result("batch_\u{0}x", 1, "batch_req_x")]).await;
    publish(
        &app,
        &poisoned.id,
        vec![
            result(&poisoned.id, 1, "batch_req_a"),
            result(&poisoned.id, 2, "batch_req_\u{0}b"),
            result(&poisoned.id, 3, "batch_req_c"),
        ],
    )
    .await;
    publish(
        &app,
        &neighbour.id,
        vec![result(&neighbour.id, 1, "batch_req_d"), result(&neighbour.id, 2, "batch_req_e")],
    )
    .await;

    let done = app.wait_for(&neighbour.id, BatchStatus::Completed).await;
    assert_eq!((done.request_counts.completed, done.request_counts.failed), (2, 0));
    let done = app.wait_for(&poisoned.id, BatchStatus::Completed).await;
    assert_eq!((done.request_counts.completed, done.request_counts.failed), (2, 1));
    let output = lines(&app, &done.output_file_id).await;
    assert_eq!(output.iter().map(|l| l.custom_id.as_str()).collect::<Vec<_>>(), ["req-0", "req-2"]);
    let errors = lines(&app, &done.error_file_id).await;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].custom_id, "req-1");
    let error = errors[0].error.as_ref().unwrap();
    assert_eq!(error.code, "result_unstorable");
    assert!(error.message.contains("could not be stored"), "{}", error.message);
}
