//! What the user sees when something is wrong: the server's own words, or what to do, and exit 2.

use crate::helpers::{batchctl_at, batchctl_with_env, spawn_gateway, spawn_gateway_with};
use sqlx::PgPool;

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn server_errors_are_printed_as_the_server_phrased_them_with_exit_2(pool: PgPool) {
    let gateway = spawn_gateway(pool).await;

    let run = gateway.batchctl(&["status", "batch_nope"]).await;

    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stderr, "error: 404 No such Batch object: batch_nope\n");
    assert!(run.stdout.is_empty());
}

#[sqlx::test(migrator = "nightshift_gateway::store::MIGRATOR")]
async fn api_key_is_sent_and_a_rejected_one_says_how_to_set_it(pool: PgPool) {
    let gateway = spawn_gateway_with(pool, &["--api-keys", "key-a"]).await;

    let without = gateway.batchctl(&["list"]).await;
    let env = [("NIGHTSHIFT_URL", gateway.url.as_str()), ("NIGHTSHIFT_API_KEY", "key-a")];
    let with = batchctl_with_env(&env, &["list"]).await;

    assert_eq!(without.code, 2, "{without:?}");
    assert!(without.stderr.starts_with("error: 401 "), "{without:?}");
    assert!(without.stderr.contains("hint: set NIGHTSHIFT_API_KEY"), "{without:?}");
    assert_eq!(with.code, 0, "{with:?}");
}

#[tokio::test]
async fn unreachable_gateway_exits_2_saying_what_to_do() {
    let url = format!("http://127.0.0.1:{}", nightshift_testkit::free_port());

    let run = batchctl_at(&url, &["status", "batch_x"]).await;

    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        format!(
            "error: cannot reach the gateway at {url}: is it running? start it with \
             scripts/local-stack.sh up, or set --url (NIGHTSHIFT_URL)\n"
        )
    );
}

#[tokio::test]
async fn submitting_a_missing_file_names_it_and_exits_2() {
    let run = batchctl_at("http://127.0.0.1:9", &["submit", "/nonexistent/batch.jsonl"]).await;

    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.starts_with("error: /nonexistent/batch.jsonl: No such file"), "{run:?}");
}

#[tokio::test]
async fn bad_arguments_are_usage_errors_with_exit_2() {
    let run = batchctl_at("http://127.0.0.1:9", &["wait", "batch_x", "--poll", "soon"]).await;

    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--poll"), "{run:?}");
}
