//! OpenAI bodies to Ollama native requests, and Ollama answers back to OpenAI objects.

use crate::helpers::{Canned, FakeServer, config, json_of, ollama, ollama_chat_reply, raw};
use nightshift_shared::messages::{ResultOutcome, TokenUsage};
use nightshift_shared::openai::Endpoint;
use nightshift_worker::backend::{Backend, BackendKind, OllamaTiming};
use serde_json::{Value, json};
use std::time::Duration;

fn response(outcome: &ResultOutcome) -> (u16, Value) {
    match outcome {
        ResultOutcome::Response { status_code, body } => (*status_code, json_of(body)),
        ResultOutcome::Error { code, message } => {
            panic!("expected a response, got {code}: {message}")
        }
        ResultOutcome::Stored { .. } => panic!("a backend answer is never stored"),
    }
}

#[tokio::test]
async fn chat_body_becomes_an_ollama_chat_request_with_options_format_images_and_tools() {
    let fake = FakeServer::start(vec![Canned::json(200, ollama_chat_reply("a cat"))]).await;
    let mut cfg = config(BackendKind::Ollama, &fake.url);
    cfg.max_tokens_cap = Some(1000);
    let backend = Backend::new(cfg).unwrap();
    let schema = json!({"type": "object", "properties": {"animal": {"type": "string"}}});
    let tools = json!([{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]);

    let body = raw(json!({
        "model": "llama3.2",
        "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "text", "text": "one word"}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"cat\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "feline"}
        ],
        "max_tokens": 64,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": "END",
        "seed": 7,
        "frequency_penalty": 0.5,
        "presence_penalty": 0.1,
        "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
        "tools": tools,
        "stream": true,
        "user": "ignored"
    }));
    let execution = backend.execute(Endpoint::ChatCompletions, &body).await;

    assert_eq!(response(&execution.outcome).0, 200);
    let sent = fake.only_request();
    assert_eq!(sent.path, "/api/chat");
    assert_eq!(
        sent.body,
        json!({
            "model": "llama3.2",
            "keep_alive": -1,
            "stream": false,
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "what is this?\none word", "images": ["iVBORw0KGgo="]},
                {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "function": {"name": "lookup", "arguments": {"q": "cat"}}}]},
                {"role": "tool", "content": "feline", "tool_name": "lookup", "tool_call_id": "call_1"}
            ],
            "options": {
                "num_predict": 64,
                "temperature": 0.2,
                "top_p": 0.9,
                "stop": ["END"],
                "seed": 7,
                "frequency_penalty": 0.5,
                "presence_penalty": 0.1
            },
            "format": schema,
            "tools": tools
        })
    );
}

#[tokio::test]
async fn ollama_chat_answer_becomes_a_chat_completion_with_usage_and_timing() {
    let mut reply = ollama_chat_reply("The sky is blue.");
    reply["done_reason"] = json!("length");
    let fake = FakeServer::start(vec![Canned::json(200, reply)]).await;
    let backend = ollama(&fake.url);

    let body = raw(json!({"model": "llama3.2", "messages": [{"role": "user", "content": "why?"}]}));
    let execution = backend.execute(Endpoint::ChatCompletions, &body).await;

    let (status, body) = response(&execution.outcome);
    assert_eq!(status, 200);
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["object"], "chat.completion");
    assert!(body["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(body["model"], "llama3.2");
    assert_eq!(
        body["choices"],
        json!([{"index": 0, "message": {"role": "assistant", "content": "The sky is blue."},
            "logprobs": null, "finish_reason": "length"}])
    );
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 34, "completion_tokens": 12, "total_tokens": 46})
    );
    assert_eq!(
        execution.usage,
        Some(TokenUsage {
            prompt_tokens: Some(34),
            completion_tokens: Some(12),
            cached_tokens: None
        })
    );
    assert_eq!(
        execution.timing,
        Some(OllamaTiming {
            load_duration: Duration::from_nanos(574_751_416),
            prompt_eval_duration: Duration::from_millis(1502),
            eval_duration: Duration::from_millis(175),
            total_duration: Duration::from_nanos(2_254_970_291),
        })
    );
    assert_eq!(execution.attempts, 1);
    assert_eq!(execution.model.as_deref(), Some("llama3.2"));
}

#[tokio::test]
async fn fully_cached_prompt_shows_zero_prompt_tokens_but_leaves_usage_unknown() {
    let mut reply = ollama_chat_reply("hi");
    reply.as_object_mut().unwrap().remove("prompt_eval_count");
    let fake = FakeServer::start(vec![Canned::json(200, reply)]).await;

    let body = raw(json!({"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}));
    let execution = ollama(&fake.url).execute(Endpoint::ChatCompletions, &body).await;

    let (_, body) = response(&execution.outcome);
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 0, "completion_tokens": 12, "total_tokens": 12})
    );
    let usage = execution.usage.unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (None, Some(12)));
}

#[tokio::test]
async fn max_tokens_cap_bounds_num_predict_whether_the_request_asks_more_or_nothing() {
    let fake = FakeServer::start(vec![Canned::json(200, ollama_chat_reply("x"))]).await;
    let mut cfg = config(BackendKind::Ollama, &fake.url);
    cfg.max_tokens_cap = Some(256);
    cfg.keep_alive = "5m".into();
    let backend = Backend::new(cfg).unwrap();

    let hi = json!([{"role": "user", "content": "hi"}]);
    let asks_more = json!({"model": "m", "messages": hi, "max_completion_tokens": 5000,
        "response_format": {"type": "json_object"}});
    let asks_nothing = json!({"model": "m", "messages": hi});
    let asks_less = json!({"model": "m", "messages": hi, "max_tokens": 10});
    for body in [asks_more, asks_nothing, asks_less] {
        backend.execute(Endpoint::ChatCompletions, &raw(body)).await;
    }

    let sent = fake.received();
    let defaults = |n: u64| json!({"num_predict": n, "temperature": 1.0, "top_p": 1.0});
    assert_eq!(sent[0].body["options"], defaults(256));
    assert_eq!(sent[0].body["format"], "json");
    assert_eq!(sent[0].body["keep_alive"], "5m", "a duration keep_alive goes as a string");
    assert_eq!(sent[1].body["options"], defaults(256));
    assert_eq!(sent[2].body["options"], defaults(10));
}

#[tokio::test]
async fn completion_runs_on_generate_and_comes_back_as_a_text_completion() {
    let reply = json!({"model": "codellama", "created_at": "2024-07-22T20:47:51Z", "response": "return a",
        "done": true, "done_reason": "stop", "prompt_eval_count": 17, "eval_count": 63,
        "total_duration": 1_162_761_250u64, "load_duration": 6_683_708u64,
        "prompt_eval_duration": 201_222_000u64, "eval_duration": 953_997_000u64});
    let fake = FakeServer::start(vec![Canned::json(200, reply)]).await;

    let body = raw(json!({"model": "codellama", "prompt": ["def f(a):"], "suffix": "    pass",
        "max_tokens": 32, "temperature": 0, "stop": ["\n\n", "def"]}));
    let execution = ollama(&fake.url).execute(Endpoint::Completions, &body).await;

    let sent = fake.only_request();
    assert_eq!(sent.path, "/api/generate");
    assert_eq!(
        sent.body,
        json!({"model": "codellama", "prompt": "def f(a):", "suffix": "    pass", "stream": false,
            "keep_alive": -1, "options": {"num_predict": 32, "temperature": 0, "top_p": 1.0,
            "stop": ["\n\n", "def"]}})
    );
    let (status, body) = response(&execution.outcome);
    assert_eq!(status, 200);
    assert!(body["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(body["object"], "text_completion");
    assert_eq!(body["model"], "codellama");
    assert_eq!(
        body["choices"],
        json!([{"text": "return a", "index": 0, "logprobs": null, "finish_reason": "stop"}])
    );
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 17, "completion_tokens": 63, "total_tokens": 80})
    );
    assert_eq!(execution.timing.unwrap().eval_duration, Duration::from_nanos(953_997_000));
}

#[tokio::test]
async fn several_prompts_in_one_completion_end_400_without_calling_ollama() {
    let fake = FakeServer::start(vec![Canned::json(200, json!({}))]).await;

    let body = raw(json!({"model": "m", "prompt": ["one", "two"]}));
    let execution = ollama(&fake.url).execute(Endpoint::Completions, &body).await;

    let (status, body) = response(&execution.outcome);
    assert_eq!(status, 400);
    assert_eq!(body["error"]["message"], "batch Ollama backend supports one prompt per request");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["param"], "prompt");
    assert_eq!(execution.attempts, 0);
    assert_eq!(execution.model.as_deref(), Some("m"));
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn embeddings_run_on_embed_and_come_back_as_an_embedding_list() {
    let reply = json!({"model": "all-minilm", "embeddings": [[0.010071029, -0.0017594862], [0.5, 0.25]],
        "total_duration": 14_143_917u64, "load_duration": 1_019_500u64, "prompt_eval_count": 8});
    let fake = FakeServer::start(vec![Canned::json(200, reply)]).await;

    let body = raw(json!({"model": "all-minilm", "input": ["sky", "grass"], "dimensions": 2}));
    let execution = ollama(&fake.url).execute(Endpoint::Embeddings, &body).await;

    let sent = fake.only_request();
    assert_eq!(sent.path, "/api/embed");
    assert_eq!(
        sent.body,
        json!({"model": "all-minilm", "input": ["sky", "grass"], "keep_alive": -1, "truncate": true, "dimensions": 2})
    );
    let (status, body) = response(&execution.outcome);
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"object": "list", "model": "all-minilm",
            "data": [
                {"object": "embedding", "index": 0, "embedding": [0.010071029, -0.0017594862]},
                {"object": "embedding", "index": 1, "embedding": [0.5, 0.25]}
            ],
            "usage": {"prompt_tokens": 8, "total_tokens": 8}})
    );
    assert_eq!(
        execution.usage,
        Some(TokenUsage { prompt_tokens: Some(8), completion_tokens: None, cached_tokens: None })
    );
}

#[tokio::test]
async fn ollama_model_not_found_is_final_at_once_with_an_openai_error_body() {
    let error = json!({"error": "model \"nope\" not found, try pulling it first"});
    let fake = FakeServer::start(vec![Canned::json(404, error)]).await;

    let body = raw(json!({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}));
    let execution = ollama(&fake.url).execute(Endpoint::ChatCompletions, &body).await;

    let (status, body) = response(&execution.outcome);
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"error": {"message": "model \"nope\" not found, try pulling it first",
            "type": "invalid_request_error", "param": null, "code": "model_not_found"}})
    );
    assert_eq!(execution.attempts, 1);
    assert!(execution.usage.is_none());
}

#[tokio::test]
async fn a_2xx_answer_that_is_not_ollama_json_is_a_bad_response_error() {
    let fake = FakeServer::start(vec![Canned::text(200, "<html>proxy login</html>")]).await;

    let body = raw(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
    let execution = ollama(&fake.url).execute(Endpoint::ChatCompletions, &body).await;

    match execution.outcome {
        ResultOutcome::Error { code, message } => {
            assert_eq!(code, "backend_bad_response");
            assert!(message.contains("/api/chat"), "{message}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    assert_eq!(execution.attempts, 1);
}

#[tokio::test]
async fn warm_up_sends_ollamas_load_request_and_reads_load_duration() {
    let reply = json!({"model": "llama3.2", "created_at": "2023-12-18T19:52:07Z", "response": "",
        "done": true, "done_reason": "load", "load_duration": 2_500_000_000u64});
    let fake = FakeServer::start(vec![Canned::json(200, reply)]).await;

    let warm = ollama(&fake.url).warm_up("llama3.2").await.unwrap();

    let sent = fake.only_request();
    assert_eq!(sent.path, "/api/generate");
    assert_eq!(sent.body, json!({"model": "llama3.2", "keep_alive": -1, "stream": false}));
    assert_eq!(warm.load_duration, Some(Duration::from_millis(2500)));
}

#[tokio::test]
async fn warm_up_of_an_embedding_model_falls_back_to_one_embedding() {
    let fake = FakeServer::start(vec![
        Canned::json(400, json!({"error": "\"all-minilm\" does not support generate"})),
        Canned::json(200, json!({"model": "all-minilm", "embeddings": [[0.1]]})),
    ])
    .await;

    let warm = ollama(&fake.url).warm_up("all-minilm").await.unwrap();

    let paths: Vec<_> = fake.received().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/api/generate", "/api/embed"]);
    assert_eq!(warm.load_duration, None);
}

#[tokio::test]
async fn warm_up_of_a_missing_model_fails_with_ollamas_message() {
    let fake = FakeServer::start(vec![Canned::json(
        404,
        json!({"error": "model \"x\" not found, try pulling it first"}),
    )])
    .await;

    let err = ollama(&fake.url).warm_up("x").await.unwrap_err();

    assert!(err.to_string().contains("not found, try pulling it first"), "{err}");
}
