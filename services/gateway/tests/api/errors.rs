//! Every client mistake is a 4xx in OpenAI's error shape, naming what was wrong: malformed query
//! strings, bodies, uploads and paths, unmatched methods, and NUL characters in ids, cursors and
//! metadata, which must never reach the database.

use crate::helpers::{assert_error, chat_file, spawn_app};
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn a_bad_limit_is_a_400_naming_limit(pool: PgPool) {
    let app = spawn_app(pool).await;
    for path in ["/v1/batches", "/v1/files"] {
        for limit in ["abc", "1.5", "", "0", "100001", "-3", "99999999999999999999"] {
            let response = app.get(&format!("{path}?limit={limit}")).send().await.unwrap();
            let message = assert_error(response, 400, Some("invalid_value"), Some("limit")).await;
            assert!(message.contains("'limit'"), "{path}?limit={limit}: {message}");
        }
    }
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn a_body_too_large_or_not_json_is_answered_in_openai_shape(pool: PgPool) {
    let app = spawn_app(pool).await;
    let huge = json!({"input_file_id": "x".repeat(3 << 20), "endpoint": "/v1/chat/completions",
                      "completion_window": "24h"});
    let response = app.create_batch(huge).await;
    assert_error(response, 413, Some("request_too_large"), None).await;

    let response = app.post("/v1/batches").body("{not json").send().await.unwrap();
    assert_error(response, 400, None, None).await;
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn a_wrong_method_is_a_405_in_openai_shape(pool: PgPool) {
    let app = spawn_app(pool).await;
    let response = app.delete("/v1/batches").send().await.unwrap();
    assert!(response.headers().contains_key("allow"));
    let message = assert_error(response, 405, Some("method_not_allowed"), None).await;
    assert!(message.contains("DELETE") && message.contains("/v1/batches"), "{message}");

    let response = app.get("/v1/batches/batch_1/cancel").send().await.unwrap();
    assert_error(response, 405, Some("method_not_allowed"), None).await;

    let response = app.get("/v1/nowhere").send().await.unwrap();
    assert_error(response, 404, Some("not_found"), None).await;
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn an_upload_that_is_not_multipart_is_a_400_in_openai_shape(pool: PgPool) {
    let app = spawn_app(pool).await;
    let response = app.post("/v1/files").json(&json!({"purpose": "batch"})).send().await.unwrap();
    let message = assert_error(response, 400, None, None).await;
    assert!(message.contains("multipart/form-data"), "{message}");

    let response = app
        .post("/v1/files")
        .header("content-type", "multipart/form-data")
        .body("--x\r\n")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, None, None).await;
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn a_path_that_is_not_utf8_is_a_400_naming_it(pool: PgPool) {
    let app = spawn_app(pool).await;
    for path in ["/v1/files/%FF%FE", "/v1/batches/%C3%28", "/v1/files/%FF/content"] {
        let response = app.get(path).send().await.unwrap();
        let message = assert_error(response, 400, Some("invalid_value"), Some("id")).await;
        assert!(message.contains("UTF-8"), "{path}: {message}");
    }
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn nul_in_ids_cursors_and_filters_is_a_400_before_the_database(pool: PgPool) {
    let app = spawn_app(pool).await;
    for (path, param) in [
        ("/v1/files/file-a%00b", "path"),
        ("/v1/files/file-a%00b/content", "path"),
        ("/v1/batches/batch_%00", "path"),
        ("/v1/batches?after=batch_%00", "after"),
        ("/v1/files?after=%00", "after"),
        ("/v1/files?purpose=batch%00", "purpose"),
    ] {
        let response = app.get(path).send().await.unwrap();
        let message = assert_error(response, 400, Some("invalid_value"), Some(param)).await;
        assert!(message.contains("NUL"), "{path}: {message}");
    }
    let response = app.delete("/v1/files/file-%00").send().await.unwrap();
    assert_error(response, 400, Some("invalid_value"), Some("path")).await;
    let response = app.post("/v1/batches/batch_%00/cancel").send().await.unwrap();
    assert_error(response, 400, Some("invalid_value"), Some("path")).await;
    // The database is fine and answers the next request.
    assert_eq!(app.get("/v1/batches").send().await.unwrap().status(), 200);
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn nul_in_a_create_body_or_an_upload_is_a_4xx(pool: PgPool) {
    let app = spawn_app(pool).await;
    let file = app.upload_ok(chat_file(1)).await;
    let batch = |extra: serde_json::Value| {
        let mut body = json!({"input_file_id": file.id, "endpoint": "/v1/chat/completions",
                              "completion_window": "24h"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let response = app.create_batch(batch(json!({"input_file_id": "file-\u{0}"}))).await;
    assert_error(response, 404, Some("not_found"), None).await;
    for metadata in [json!({"k\u{0}": "v"}), json!({"k": "v\u{0}"})] {
        let response = app.create_batch(batch(json!({"metadata": metadata}))).await;
        assert_error(response, 400, Some("invalid_value"), Some("metadata")).await;
    }

    let form = reqwest::multipart::Form::new()
        .text("purpose", "batch")
        .part("file", reqwest::multipart::Part::bytes(chat_file(1)).file_name("in\u{0}put.jsonl"));
    let response = app.post("/v1/files").multipart(form).send().await.unwrap();
    // A NUL cannot be in a header: the upload is malformed before its name is read.
    let message = assert_error(response, 400, None, None).await;
    assert!(message.contains("multipart"), "{message}");

    let form = reqwest::multipart::Form::new()
        .text("purpose", "batch\u{0}")
        .part("file", reqwest::multipart::Part::bytes(chat_file(1)).file_name("in.jsonl"));
    let response = app.post("/v1/files").multipart(form).send().await.unwrap();
    assert_error(response, 400, Some("invalid_value"), Some("purpose")).await;
    assert_eq!(app.get("/v1/files").send().await.unwrap().status(), 200);
}
