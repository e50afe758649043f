//! Tool calls: offered tools are called (ids like Ollama's), tool results are answered in
//! text, and what the client sent is visible in /sim/state.

use ollama_sim::SimConfig;
use serde_json::{Value, json};

use crate::helpers::{MODEL, TestSim};

fn tools() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"]}}}])
}

fn is_ollama_call_id(id: &str) -> bool {
    id.len() == 13
        && id.starts_with("call_")
        && id[5..].bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

#[tokio::test]
async fn offered_tools_are_called_with_ids_indexes_and_schema_arguments() {
    let app = TestSim::start(SimConfig::zero_latency()).await;

    let body = app.chat_ok("weather in Paris?", json!({"tools": tools()})).await;
    let again = app.chat_ok("weather in Paris?", json!({"tools": tools()})).await;

    let message = &body["message"];
    assert_eq!(message["content"], "");
    let call = &message["tool_calls"][0];
    assert!(is_ollama_call_id(call["id"].as_str().unwrap()), "{call}");
    assert_eq!(call["function"]["index"], 0);
    assert_eq!(call["function"]["name"], "get_weather");
    assert!(call["function"]["arguments"]["city"].is_string(), "{call}");
    assert_eq!(body["done_reason"], "stop");
    assert!(body["eval_count"].as_u64().unwrap() > 0);
    assert_eq!(again["message"], body["message"], "deterministic");
}

#[tokio::test]
async fn a_tool_result_is_answered_in_text_and_the_request_is_recorded() {
    let app = TestSim::start(SimConfig::zero_latency()).await;
    let first = app.chat_ok("weather in Paris?", json!({"tools": tools()})).await;
    let call = first["message"]["tool_calls"][0].clone();
    let id = call["id"].as_str().unwrap().to_owned();
    let request = json!({"model": MODEL, "stream": false, "tools": tools(), "messages": [
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": "sunny", "tool_name": "get_weather", "tool_call_id": id},
    ]});

    let (status, body) = app.post("/api/chat", request.clone()).await;

    assert_eq!(status, 200, "{body}");
    assert!(body["message"].get("tool_calls").is_none(), "{body}");
    assert!(!body["message"]["content"].as_str().unwrap().is_empty());
    let recorded = &app.state().await["last_chat_request"];
    assert_eq!(recorded, &request);
    assert_eq!(recorded["messages"][2]["tool_call_id"], id.as_str());
    assert_eq!(recorded["messages"][1]["tool_calls"][0]["id"], id.as_str());
}

#[tokio::test]
async fn v1_tool_calls_finish_with_tool_calls_and_json_string_arguments() {
    let app = TestSim::start(SimConfig::zero_latency()).await;
    let request = json!({"model": MODEL, "tools": tools(),
        "messages": [{"role": "user", "content": "weather in Paris?"}]});

    let (_, body) = app.post("/v1/chat/completions", request.clone()).await;
    let mut capped = request;
    capped["max_tokens"] = json!(1);
    let (_, short) = app.post("/v1/chat/completions", capped).await;

    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let call = &choice["message"]["tool_calls"][0];
    assert!(is_ollama_call_id(call["id"].as_str().unwrap()), "{call}");
    assert_eq!((call["index"].as_u64(), call["type"].as_str()), (Some(0), Some("function")));
    let arguments: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert!(arguments["city"].is_string());
    // A call that does not fit max_tokens is not made: the text is cut, "length" stays.
    assert_eq!(short["choices"][0]["finish_reason"], "length");
    assert!(short["choices"][0]["message"].get("tool_calls").is_none());
}
