//! Responses carry the real Ollama (and OpenAI-compatible) field names and shapes.

use ollama_sim::SimConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{MODEL, TestSim, chat_body};

fn assert_metrics(v: &Value) {
    for field in [
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_count",
        "eval_duration",
    ] {
        assert!(v[field].is_u64(), "{field} missing in {v}");
    }
}

fn assert_rfc3339(s: &Value) {
    let s = s.as_str().unwrap();
    assert!(s.len() >= 20 && &s[4..5] == "-" && &s[10..11] == "T" && s.ends_with('Z'), "{s}");
}

#[tokio::test]
async fn chat_answers_with_ollama_fields_and_eval_count_words() {
    let app = TestSim::start(SimConfig::zero_latency()).await;

    let body = app.chat_ok("Why is the sky blue?", json!({})).await;

    assert_eq!(body["model"], MODEL);
    assert_rfc3339(&body["created_at"]);
    assert_eq!(body["message"]["role"], "assistant");
    assert_eq!(body["done"], true);
    assert_eq!(body["done_reason"], "stop");
    assert_metrics(&body);
    let words = body["message"]["content"].as_str().unwrap().split_whitespace().count() as u64;
    assert_eq!(words, body["eval_count"].as_u64().unwrap());
    assert!((16..=64).contains(&words));
    assert_eq!(body["prompt_eval_count"], 5); // 20 chars / 4
}

#[tokio::test]
async fn streamed_chat_is_ndjson_ending_in_done_with_the_same_content() {
    let app = TestSim::start(SimConfig::zero_latency()).await;
    let whole = app.chat_ok("hello", json!({})).await;

    let resp = app
        .client
        .post(app.url("/api/chat"))
        .json(&chat_body("hello", json!({"stream": true})))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let text = resp.text().await.unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();

    let last = lines.last().unwrap();
    assert_eq!(last["done"], true);
    assert_metrics(last);
    let content: String = lines.iter().map(|l| l["message"]["content"].as_str().unwrap()).collect();
    assert_eq!(content, whole["message"]["content"].as_str().unwrap());
}

#[tokio::test]
async fn generate_answers_response_and_empty_prompt_loads() {
    let app = TestSim::start(SimConfig::zero_latency()).await;

    let (status, body) = app
        .post(
            "/api/generate",
            json!({"model": MODEL, "prompt": "hi", "system": "be brief", "stream": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body["response"].as_str().unwrap().is_empty());
    assert_eq!(body["done"], true);
    assert!(body.get("context").is_none());
    assert_metrics(&body);

    let (_, load) = app
        .post("/api/generate", json!({"model": "other:7b", "prompt": "", "stream": false}))
        .await;
    assert_eq!((load["done_reason"].as_str(), load["response"].as_str()), (Some("load"), Some("")));
    assert_eq!(app.ps().await.len(), 2);

    let (_, unload) = app
        .post("/api/generate", json!({"model": "other:7b", "keep_alive": 0, "stream": false}))
        .await;
    assert_eq!(unload["done_reason"], "unload");
    assert_eq!(app.ps().await.len(), 1);
}

#[tokio::test]
async fn embed_returns_deterministic_unit_vectors() {
    let config = SimConfig { embed_dim: 16, ..SimConfig::zero_latency() };
    let app = TestSim::start(config).await;

    let (status, body) =
        app.post("/api/embed", json!({"model": MODEL, "input": ["a b c d", "e"]})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["model"], MODEL);
    let vectors = body["embeddings"].as_array().unwrap();
    assert_eq!(vectors.len(), 2);
    let first: Vec<f64> =
        vectors[0].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert_eq!(first.len(), 16);
    assert!((first.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-3);
    assert_eq!(body["prompt_eval_count"], 3);
    assert!(body["total_duration"].is_u64() && body["load_duration"].is_u64());

    let (_, single) = app.post("/api/embed", json!({"model": MODEL, "input": "a b c d"})).await;
    assert_eq!(single["embeddings"][0], vectors[0]);
}

#[tokio::test]
async fn listing_endpoints_match_ollama() {
    let app = TestSim::start(SimConfig::zero_latency()).await;
    app.chat_ok("x", json!({})).await;

    let root = app.client.get(app.url("/")).send().await.unwrap().text().await.unwrap();
    assert_eq!(root, "Ollama is running");
    assert!(app.get("/api/version").await["version"].as_str().unwrap().ends_with("-sim"));

    let tags = app.get("/api/tags").await;
    let model = &tags["models"][0];
    for field in ["name", "model", "modified_at", "size", "digest", "details"] {
        assert!(!model[field].is_null(), "{field}");
    }
    assert_eq!(model["name"], MODEL);
    for field in ["format", "family", "parameter_size", "quantization_level"] {
        assert!(model["details"][field].is_string(), "{field}");
    }

    let ps = app.ps().await;
    assert_eq!(ps.len(), 1);
    for field in ["name", "model", "size", "digest", "details", "expires_at", "size_vram"] {
        assert!(!ps[0][field].is_null(), "{field}");
    }
    assert_rfc3339(&ps[0]["expires_at"]);
    assert_eq!(ps[0]["size_vram"], (2048 + 64 * 4) * 1024 * 1024u64);
}

#[tokio::test]
async fn openai_chat_completion_has_openai_shape_and_usage() {
    let app = TestSim::start(SimConfig::zero_latency()).await;
    let request = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi there"}], "max_tokens": 5});

    let (status, body) = app.post("/v1/chat/completions", request.clone()).await;

    assert_eq!(status, StatusCode::OK);
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["object"], "chat.completion");
    assert!(body["created"].is_u64());
    assert_eq!(body["model"], MODEL);
    let choice = &body["choices"][0];
    assert_eq!(
        (choice["index"].as_u64(), choice["message"]["role"].as_str()),
        (Some(0), Some("assistant"))
    );
    assert_eq!(choice["finish_reason"], "length");
    let usage = &body["usage"];
    assert_eq!(usage["completion_tokens"], 5);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );

    let mut streaming = request;
    streaming["stream"] = json!(true);
    let sse = app
        .client
        .post(app.url("/v1/chat/completions"))
        .json(&streaming)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(sse.starts_with("data: {") && sse.ends_with("data: [DONE]\n\n"), "{sse}");
}

#[tokio::test]
async fn openai_completions_embeddings_and_models_work() {
    let app = TestSim::start(SimConfig::zero_latency()).await;

    let (_, completion) =
        app.post("/v1/completions", json!({"model": MODEL, "prompt": "once upon"})).await;
    assert_eq!(completion["object"], "text_completion");
    assert!(completion["choices"][0]["text"].is_string());

    let (_, emb) = app.post("/v1/embeddings", json!({"model": MODEL, "input": ["a", "b"]})).await;
    assert_eq!(emb["object"], "list");
    assert_eq!(emb["data"][1]["index"], 1);
    assert_eq!(emb["data"][0]["embedding"].as_array().unwrap().len(), 384);

    let models = app.get("/v1/models").await;
    assert_eq!(models["data"][0]["id"], MODEL);
}

#[tokio::test]
async fn bad_requests_get_ollama_errors() {
    let config = SimConfig { any_model: false, ..SimConfig::zero_latency() };
    let app = TestSim::start(config).await;

    let resp = app.client.post(app.url("/api/chat")).body("{not json").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.json::<Value>().await.unwrap()["error"].is_string());

    let (status, body) = app.post("/api/chat", json!({"messages": []})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("model is required"))
    );

    let (status, body) = app.chat("hi", json!({"model": "nope"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "model 'nope' not found");

    let (status, body) = app
        .post(
            "/v1/chat/completions",
            json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["type"], "not_found_error");

    // The configured model, with or without ":latest"-style normalisation, is known.
    app.chat_ok("hi", json!({})).await;
}

#[tokio::test]
async fn json_format_and_schema_give_parseable_content() {
    let app = TestSim::start(SimConfig::zero_latency()).await;

    let body = app.chat_ok("list", json!({"format": "json"})).await;
    let parsed: Value = serde_json::from_str(body["message"]["content"].as_str().unwrap()).unwrap();
    assert!(parsed.is_object());

    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}, "n": {"type": "integer"}}, "required": ["city", "n"]});
    let body = app.chat_ok("list", json!({"format": schema})).await;
    let parsed: Value = serde_json::from_str(body["message"]["content"].as_str().unwrap()).unwrap();
    assert!(parsed["city"].is_string() && parsed["n"].is_u64());
}
