//! `/v1/files`: upload, list, retrieve, content, delete.

use crate::helpers::{assert_error, chat_file, spawn_app, spawn_app_with};
use nightshift_shared::openai::{FileDeleted, FileObject, List};
use sqlx::PgPool;

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn uploaded_file_is_listed_retrieved_downloaded_and_deleted(pool: PgPool) {
    let app = spawn_app(pool).await;
    // Over 2 MiB, so the bytes span several stored parts.
    let content = chat_file(30_000);
    assert!(content.len() > 2 * 1024 * 1024);

    let file = app.upload_ok(content.clone()).await;
    assert!(file.id.starts_with("file-"));
    assert_eq!((file.object.as_str(), file.purpose.as_str()), ("file", "batch"));
    assert_eq!((file.bytes, file.filename.as_str()), (content.len() as u64, "input.jsonl"));

    let got: FileObject =
        app.get(&format!("/v1/files/{}", file.id)).send().await.unwrap().json().await.unwrap();
    assert_eq!(got, file);

    let list: List<FileObject> = app.get("/v1/files").send().await.unwrap().json().await.unwrap();
    assert_eq!(list.data, vec![file.clone()]);

    let downloaded = app.get(&format!("/v1/files/{}/content", file.id)).send().await.unwrap();
    assert_eq!(downloaded.status(), 200);
    assert_eq!(downloaded.bytes().await.unwrap(), content);

    let deleted: FileDeleted =
        app.delete(&format!("/v1/files/{}", file.id)).send().await.unwrap().json().await.unwrap();
    assert_eq!(deleted, FileDeleted { id: file.id.clone(), object: "file".into(), deleted: true });
    let gone = app.get(&format!("/v1/files/{}", file.id)).send().await.unwrap();
    assert_error(gone, 404, Some("not_found"), None).await;
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn files_list_pages_newest_first(pool: PgPool) {
    let app = spawn_app(pool).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.upload_ok(chat_file(1)).await.id);
    }
    let page: List<FileObject> =
        app.get("/v1/files?limit=2").send().await.unwrap().json().await.unwrap();
    assert!(page.has_more);
    assert_eq!(page.data.iter().map(|f| &f.id).collect::<Vec<_>>(), [&ids[2], &ids[1]]);
    assert_eq!(page.last_id.as_deref(), Some(ids[1].as_str()));
    let rest: List<FileObject> = app
        .get(&format!("/v1/files?limit=2&after={}", ids[1]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!rest.has_more);
    assert_eq!(rest.data.iter().map(|f| &f.id).collect::<Vec<_>>(), [&ids[0]]);
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn upload_without_file_or_purpose_or_with_another_purpose_is_rejected(pool: PgPool) {
    let app = spawn_app(pool).await;
    let no_file = reqwest::multipart::Form::new().text("purpose", "batch");
    let response = app.post("/v1/files").multipart(no_file).send().await.unwrap();
    assert_error(response, 400, Some("missing_required_parameter"), Some("file")).await;

    let no_purpose = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(chat_file(1)).file_name("a.jsonl"));
    let response = app.post("/v1/files").multipart(no_purpose).send().await.unwrap();
    assert_error(response, 400, Some("missing_required_parameter"), Some("purpose")).await;

    let fine_tune = reqwest::multipart::Form::new()
        .text("purpose", "fine-tune")
        .part("file", reqwest::multipart::Part::bytes(chat_file(1)).file_name("a.jsonl"));
    let response = app.post("/v1/files").multipart(fine_tune).send().await.unwrap();
    assert_error(response, 400, Some("invalid_value"), Some("purpose")).await;

    let not_multipart = app.post("/v1/files").body("plain").send().await.unwrap();
    assert_eq!(not_multipart.status(), 400);

    // Nothing half-stored stays behind.
    let list: List<FileObject> = app.get("/v1/files").send().await.unwrap().json().await.unwrap();
    assert!(list.data.is_empty());
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn upload_over_the_size_limit_is_413_and_stores_nothing(pool: PgPool) {
    let app = spawn_app_with(pool, &["--max-file-bytes", "1000"]).await;
    let response = app.upload("big.jsonl", chat_file(100)).await;
    let message = assert_error(response, 413, Some("file_too_large"), None).await;
    assert!(message.contains("1000 bytes"), "{message}");
    let list: List<FileObject> = app.get("/v1/files").send().await.unwrap().json().await.unwrap();
    assert!(list.data.is_empty());
    let stored: i64 = nightshift_shared::on_db!(app.state.store.db(), pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM files").fetch_one(pool).await.unwrap()
    });
    assert_eq!(stored, 0);
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn unknown_files_are_404_everywhere(pool: PgPool) {
    let app = spawn_app(pool).await;
    for response in [
        app.get("/v1/files/file-nope").send().await.unwrap(),
        app.get("/v1/files/file-nope/content").send().await.unwrap(),
        app.delete("/v1/files/file-nope").send().await.unwrap(),
    ] {
        let message = assert_error(response, 404, Some("not_found"), None).await;
        assert_eq!(message, "No such File object: file-nope");
    }
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn input_file_of_a_running_batch_cannot_be_deleted(pool: PgPool) {
    let app = spawn_app(pool).await;
    let batch = app.submit(chat_file(3)).await;
    let response = app.delete(&format!("/v1/files/{}", batch.input_file_id)).send().await.unwrap();
    let message = assert_error(response, 409, Some("conflict"), None).await;
    assert!(message.contains(&batch.id), "{message}");
}
