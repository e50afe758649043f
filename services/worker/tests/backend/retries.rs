//! The failure policy end to end: what is retried, what is final, what a request ends as when
//! the server never answers, and how overload lowers the in-flight limit.

use crate::helpers::{Canned, FakeServer, config, json_of, ollama, ollama_chat_reply, raw};
use nightshift_shared::messages::ResultOutcome;
use nightshift_shared::openai::Endpoint;
use nightshift_worker::backend::{Backend, BackendKind, Execution};
use serde_json::json;
use std::time::Duration;

fn chat() -> Box<serde_json::value::RawValue> {
    raw(json!({"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}))
}

fn error_of(execution: &Execution) -> (&str, &str) {
    match &execution.outcome {
        ResultOutcome::Error { code, message } => (code, message),
        other => panic!("expected an error outcome, got {other:?}"),
    }
}

fn status_of(execution: &Execution) -> u16 {
    match &execution.outcome {
        ResultOutcome::Response { status_code, .. } => *status_code,
        other => panic!("expected a response, got {other:?}"),
    }
}

#[tokio::test]
async fn two_server_errors_then_success_succeeds_on_the_third_attempt() {
    let fake = FakeServer::start(vec![
        Canned::json(500, json!({"error": "llama runner process has terminated"})),
        Canned::json(502, json!({"error": "bad gateway"})),
        Canned::json(200, ollama_chat_reply("ok")),
    ])
    .await;

    let execution = ollama(&fake.url).execute(Endpoint::ChatCompletions, &chat()).await;

    assert_eq!(status_of(&execution), 200);
    assert_eq!(execution.attempts, 3);
    assert_eq!(fake.received().len(), 3);
    assert!(execution.usage.is_some());
}

#[tokio::test]
async fn a_server_that_keeps_failing_ends_backend_error_after_max_attempts() {
    let fake = FakeServer::start(vec![Canned::json(500, json!({"error": "out of memory"}))]).await;

    let execution = ollama(&fake.url).execute(Endpoint::ChatCompletions, &chat()).await;

    let (code, message) = error_of(&execution);
    assert_eq!(code, "backend_error");
    assert!(message.contains("500") && message.contains("out of memory"), "{message}");
    assert!(message.contains("3 attempts"), "{message}");
    assert_eq!(execution.attempts, 3);
    assert_eq!(fake.received().len(), 3);
}

#[tokio::test]
async fn busy_503_lowers_the_concurrency_limit_and_is_retried() {
    let busy =
        json!({"error": "server busy, please try again.  maximum pending requests exceeded"});
    let fake = FakeServer::start(vec![
        Canned::json(503, busy),
        Canned::json(200, ollama_chat_reply("ok")),
    ])
    .await;
    let backend = ollama(&fake.url);
    assert_eq!(backend.concurrency().current_limit(), 4);

    let execution = backend.execute(Endpoint::ChatCompletions, &chat()).await;

    assert_eq!(status_of(&execution), 200);
    assert_eq!(execution.attempts, 2);
    assert_eq!(backend.concurrency().current_limit(), 2, "halved by the 503, still cooling down");
    assert_eq!(backend.concurrency().in_flight(), 0, "permits are given back");
}

#[tokio::test]
async fn a_bad_request_is_final_at_once() {
    let fake =
        FakeServer::start(vec![Canned::json(400, json!({"error": "invalid options: num_ctx"}))])
            .await;

    let execution = ollama(&fake.url).execute(Endpoint::ChatCompletions, &chat()).await;

    assert_eq!(execution.attempts, 1);
    let ResultOutcome::Response { status_code, body } = &execution.outcome else {
        panic!("expected a response, got {:?}", execution.outcome);
    };
    assert_eq!(*status_code, 400);
    assert_eq!(
        json_of(body),
        json!({"error": {"message": "invalid options: num_ctx", "type": "invalid_request_error",
            "param": null, "code": null}})
    );
}

#[tokio::test]
async fn rate_limit_is_retried_after_the_servers_retry_after() {
    let fake = FakeServer::start(vec![
        Canned::json(429, json!({"error": "slow down"})).header("retry-after", "0"),
        Canned::json(200, ollama_chat_reply("ok")),
    ])
    .await;

    let execution = ollama(&fake.url).execute(Endpoint::ChatCompletions, &chat()).await;

    assert_eq!(status_of(&execution), 200);
    assert_eq!(execution.attempts, 2);
}

#[tokio::test]
async fn a_server_slower_than_the_timeout_ends_backend_timeout() {
    let fake = FakeServer::start(vec![
        Canned::json(200, ollama_chat_reply("late")).after(Duration::from_secs(3)),
    ])
    .await;
    let mut cfg = config(BackendKind::Ollama, &fake.url);
    cfg.request_timeout = Duration::from_millis(150);
    cfg.max_attempts = 2;

    let execution = Backend::new(cfg).unwrap().execute(Endpoint::ChatCompletions, &chat()).await;

    let (code, message) = error_of(&execution);
    assert_eq!(code, "backend_timeout");
    assert!(message.contains("2 attempts"), "{message}");
    assert_eq!(execution.attempts, 2);
    assert!(execution.latency < Duration::from_secs(2), "each attempt is cut at the timeout");
}

#[tokio::test]
async fn a_refused_connection_ends_backend_unavailable() {
    // A port that was just free: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);

    let execution = ollama(&url).execute(Endpoint::ChatCompletions, &chat()).await;

    let (code, message) = error_of(&execution);
    assert_eq!(code, "backend_unavailable");
    assert!(message.contains(&url) && message.contains("3 attempts"), "{message}");
    assert_eq!(execution.attempts, 3);
    assert!(execution.timing.is_none() && execution.usage.is_none());
}

#[tokio::test]
async fn requests_in_flight_never_exceed_max_concurrency() {
    let fake = FakeServer::start(vec![
        Canned::json(200, ollama_chat_reply("ok")).after(Duration::from_millis(40)),
    ])
    .await;
    let mut cfg = config(BackendKind::Ollama, &fake.url);
    cfg.max_concurrency = 2;
    let backend = Backend::new(cfg).unwrap();

    let body = chat();
    let runs = (0..8).map(|_| backend.execute(Endpoint::ChatCompletions, &body));
    let executions = futures::future::join_all(runs).await;

    assert!(executions.iter().all(|e| status_of(e) == 200));
    assert_eq!(fake.received().len(), 8);
    assert_eq!(fake.max_in_flight(), 2);
    assert_eq!(backend.concurrency().in_flight(), 0);
}

#[tokio::test]
async fn a_server_that_does_not_support_the_endpoint_is_answered_once_not_retried() {
    // llama.cpp's answers to an embeddings request without --embeddings (501), and to a chat
    // request sent to an embedding model (500 that names the missing capability).
    for canned in [
        Canned::json(
            501,
            json!({"error": {"code": 501, "type": "not_supported_error",
            "message": "This server does not support embeddings. Start it with `--embeddings`"}}),
        ),
        Canned::json(
            500,
            json!({"error": {"code": 500, "type": "server_error",
            "message": "the current context does not support logits computation. skipping"}}),
        ),
    ] {
        let fake = FakeServer::start(vec![canned]).await;
        let backend = Backend::new(config(BackendKind::OpenAi, &fake.url)).unwrap();
        let execution = backend.execute(Endpoint::ChatCompletions, &chat()).await;
        assert_eq!(execution.attempts, 1);
        assert!(status_of(&execution) >= 500);
        let ResultOutcome::Response { body, .. } = &execution.outcome else { unreachable!() };
        assert!(json_of(body)["error"]["message"].as_str().unwrap().contains("does not support"));
    }
}

#[tokio::test]
async fn warm_up_tries_the_other_endpoint_and_says_what_the_server_lacks() {
    let fake = FakeServer::start(vec![
        Canned::json(
            500,
            json!({"error": {"code": 500, "type": "server_error",
            "message": "the current context does not support logits computation. skipping"}}),
        ),
        Canned::json(
            501,
            json!({"error": {"code": 501, "type": "not_supported_error",
            "message": "This server does not support embeddings. Start it with `--embeddings`"}}),
        ),
    ])
    .await;
    let backend = Backend::new(config(BackendKind::OpenAi, &fake.url)).unwrap();
    let err = backend.warm_up("nomic-embed").await.unwrap_err().to_string();
    assert_eq!(fake.received().len(), 2, "one try per endpoint");
    assert!(err.contains("logits computation") && err.contains("--embeddings"), "{err}");
}
