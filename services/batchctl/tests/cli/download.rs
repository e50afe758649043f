//! `batchctl download`: results of a finished batch, streamed to files.

use crate::helpers::{spawn_gateway, valid_batch_file};
use nightshift_shared::openai::BatchStatus;
use sqlx::PgPool;

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn download_writes_the_output_and_error_files_of_a_completed_batch(pool: PgPool) {
    let gateway = spawn_gateway(pool).await;
    let dir = tempfile::tempdir().unwrap();
    let id = gateway.submit(&valid_batch_file(dir.path(), 4)).await;
    gateway.wait_for(&id, BatchStatus::InProgress).await;
    // No workers exist yet to finish the batch: upload stand-in result files and mark the batch
    // completed with them straight in the gateway's database.
    let output = "{\"custom_id\":\"request-1\"}\n".repeat(3);
    let errors = "{\"custom_id\":\"request-4\"}"; // a last line without its newline still counts
    std::fs::write(dir.path().join("out.jsonl"), &output).unwrap();
    std::fs::write(dir.path().join("err.jsonl"), errors).unwrap();
    let output_file = gateway.client.upload_file(&dir.path().join("out.jsonl")).await.unwrap();
    let error_file = gateway.client.upload_file(&dir.path().join("err.jsonl")).await.unwrap();
    sqlx::query(
        "UPDATE batches SET output_file_id = $2, error_file_id = $3, completed = 3, failed = 1
         WHERE id = $1",
    )
    .bind(&id)
    .bind(&output_file.id)
    .bind(&error_file.id)
    .execute(&gateway.pool)
    .await
    .unwrap();
    gateway.force_status(&id, BatchStatus::Completed).await;
    let out_dir = dir.path().join("results");

    let run = gateway.batchctl(&["download", &id, "--out", out_dir.to_str().unwrap()]).await;

    assert_eq!(run.code, 0, "{run:?}");
    let output_path = out_dir.join(format!("{id}_output.jsonl"));
    let errors_path = out_dir.join(format!("{id}_errors.jsonl"));
    assert_eq!(std::fs::read_to_string(&output_path).unwrap(), output);
    assert_eq!(std::fs::read_to_string(&errors_path).unwrap(), errors);
    let printed: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(printed.len(), 2, "{run:?}");
    assert!(printed[0].starts_with(&format!("{}  3 lines", output_path.display())), "{run:?}");
    assert!(printed[1].starts_with(&format!("{}  1 lines", errors_path.display())), "{run:?}");
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 2, "no .part files left behind");
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn download_of_a_running_batch_says_to_wait_for_it(pool: PgPool) {
    let gateway = spawn_gateway(pool).await;
    let dir = tempfile::tempdir().unwrap();
    let id = gateway.submit(&valid_batch_file(dir.path(), 2)).await;
    gateway.wait_for(&id, BatchStatus::InProgress).await;

    let run = gateway.batchctl(&["download", &id, "--out", dir.path().to_str().unwrap()]).await;

    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        format!(
            "error: batch {id} is in_progress and has no output or error file: wait for it to \
             finish with `batchctl wait {id}`\n"
        )
    );
}
