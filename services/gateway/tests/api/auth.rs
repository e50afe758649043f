//! API keys: required when configured, and each key sees only what it created.

use crate::helpers::{assert_error, chat_file, spawn_app_with};
use nightshift_shared::openai::{Batch, FileObject, List};
use sqlx::PgPool;

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn missing_or_wrong_keys_are_401_and_health_stays_open(pool: PgPool) {
    let app = spawn_app_with(pool, &["--api-keys", "key-a,key-b"]).await;
    for path in ["/v1/files", "/v1/batches", "/v1/batches/batch_x", "/v1/files/file-x/content"] {
        let response = app.get(path).send().await.unwrap();
        let message = assert_error(response, 401, None, None).await;
        assert!(message.contains("didn't provide an API key"), "{message}");
    }
    let wrong = app.get("/v1/files").bearer_auth("key-c").send().await.unwrap();
    assert_error(wrong, 401, Some("invalid_api_key"), None).await;
    assert_eq!(app.get("/healthz").send().await.unwrap().status(), 200);
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn files_and_batches_are_invisible_to_other_keys(pool: PgPool) {
    let app = spawn_app_with(pool, &["--api-keys", "key-a,key-b"]).await.with_key("key-a");
    let batch = app.submit(chat_file(2)).await;
    let other = |path: String| app.client.get(format!("{}{path}", app.url)).bearer_auth("key-b");

    for path in [
        format!("/v1/files/{}", batch.input_file_id),
        format!("/v1/files/{}/content", batch.input_file_id),
        format!("/v1/batches/{}", batch.id),
    ] {
        let response = other(path).send().await.unwrap();
        assert_error(response, 404, Some("not_found"), None).await;
    }
    let cancel = app
        .client
        .post(format!("{}/v1/batches/{}/cancel", app.url, batch.id))
        .bearer_auth("key-b")
        .send()
        .await
        .unwrap();
    assert_error(cancel, 404, Some("not_found"), None).await;
    let files: List<FileObject> =
        other("/v1/files".into()).send().await.unwrap().json().await.unwrap();
    let batches: List<Batch> =
        other("/v1/batches".into()).send().await.unwrap().json().await.unwrap();
    assert!(files.data.is_empty() && batches.data.is_empty());

    // The owner still sees both.
    let mine: List<Batch> = app.get("/v1/batches").send().await.unwrap().json().await.unwrap();
    assert_eq!(mine.data.len(), 1);
}
