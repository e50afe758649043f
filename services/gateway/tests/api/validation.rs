//! Bad input files: each problem fails the batch with a precise message and its line number.

use crate::helpers::{chat_line, spawn_app_with};
use nightshift_shared::openai::{BatchError, BatchStatus};
use sqlx::PgPool;

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn each_bad_input_fails_the_batch_with_its_line_and_message(pool: PgPool) {
    let app = spawn_app_with(
        pool,
        &["--max-line-bytes", "4096", "--max-requests", "3", "--chunk-max-bytes", "8192"],
    )
    .await;
    let line = |i| chat_line(i);
    // (what, file, expected code, expected line, expected message excerpt)
    type Case = (&'static str, Vec<u8>, &'static str, Option<u64>, &'static str);
    let cases: Vec<Case> = vec![
        ("empty file", vec![], "empty_file", None, "The input file is empty."),
        ("blank lines only", b"\n\n".to_vec(), "empty_file", None, "only blank lines"),
        (
            "byte order mark",
            format!("\u{feff}{}\n", line(0)).into_bytes(),
            "invalid_encoding",
            Some(1),
            "byte order mark",
        ),
        (
            "CRLF",
            format!("{}\n{}\r\n", line(0), line(1)).into_bytes(),
            "invalid_line_ending",
            Some(2),
            "Line 2 ends with CRLF",
        ),
        (
            "invalid UTF-8",
            [format!("{}\n", line(0)).into_bytes(), b"{\"custom_id\":\"\xc3\x28\"}\n".to_vec()]
                .concat(),
            "invalid_encoding",
            Some(2),
            "Line 2 is not valid UTF-8",
        ),
        (
            "line too long",
            format!("{}\n{}\n", line(0), "x".repeat(5000)).into_bytes(),
            "line_too_long",
            Some(2),
            "Line 2 is 5000 bytes; a request line may be at most 4096 bytes",
        ),
        (
            "too many requests",
            (0..4).map(|i| line(i) + "\n").collect::<String>().into_bytes(),
            "too_many_requests",
            Some(4),
            "The file holds 4 requests; a batch may hold at most 3",
        ),
        (
            "duplicate custom_id",
            format!("{}\n\n{}\n", line(0), line(0)).into_bytes(),
            "duplicate_custom_id",
            Some(3),
            "custom_id \"req-0\" is already used on line 1",
        ),
        (
            "wrong url",
            format!("{}\n", line(0).replace("/v1/chat/completions", "/v1/embeddings")).into_bytes(),
            "invalid_url",
            Some(1),
            "does not match the batch's endpoint",
        ),
    ];
    for (what, file, code, line, message) in cases {
        let batch = app.submit(file).await;
        let failed = app.wait_for(&batch.id, BatchStatus::Failed).await;
        assert!(failed.failed_at.is_some(), "{what}");
        let errors = failed.errors.expect(what);
        assert_eq!(errors.object, "list");
        let BatchError { code: got_code, line: got_line, message: got_message, .. } =
            &errors.data[0];
        assert_eq!((got_code.as_str(), *got_line), (code, line), "{what}: {got_message}");
        assert!(got_message.contains(message), "{what}: {got_message}");
    }
    assert!(app.chunk_messages().await.is_empty(), "a failed batch publishes nothing");
}
