//! The unmodified OpenAI Python SDK against the gateway.

use crate::helpers::{chat_file, spawn_app};
use sqlx::PgPool;

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn openai_python_sdk_runs_the_whole_files_and_batches_flow(pool: PgPool) {
    let app = spawn_app(pool).await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("batch.jsonl");
    std::fs::write(&input, chat_file(5)).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/openai_sdk_flow.py");
    // tokio's Command: the test runtime has one thread, which must keep serving the gateway.
    let output = tokio::process::Command::new(std::env::var("PYTHON").unwrap_or("python3".into()))
        .arg(script)
        .arg(format!("{}/v1", app.url))
        .arg(&input)
        .output()
        .await
        .expect("python3 must be installed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "SDK flow failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("SDK FLOW OK"), "{stdout}");
}
