//! Ollama native answers rewritten as the OpenAI response objects a batch output file holds,
//! with the token counts and timings Ollama reported.

use super::ReplyKind;
use crate::backend::OllamaTiming;
use crate::backend::wire::{Translated, lenient_u64, single_line};
use nightshift_shared::messages::TokenUsage;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The statistics Ollama appends to a finished answer. Ollama omits zero values, so each may
/// be absent: `prompt_eval_count` in particular when the whole prompt came from its cache.
#[derive(Debug, Default, Deserialize)]
struct Metrics {
    #[serde(default, deserialize_with = "lenient_u64")]
    total_duration: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    load_duration: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    prompt_eval_count: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    prompt_eval_duration: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    eval_count: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    eval_duration: Option<u64>,
}

#[derive(Deserialize)]
struct ChatReply {
    #[serde(default)]
    model: Option<String>,
    message: ChatMessage,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(flatten)]
    metrics: Metrics,
}

#[derive(Deserialize)]
struct ChatMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCall>>,
}

#[derive(Deserialize)]
struct ToolCall {
    #[serde(default)]
    id: Option<String>,
    function: ToolFunction,
}

#[derive(Deserialize)]
struct ToolFunction {
    name: String,
    #[serde(default)]
    arguments: Value,
}

#[derive(Deserialize)]
struct GenerateReply {
    #[serde(default)]
    model: Option<String>,
    response: String,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(flatten)]
    metrics: Metrics,
}

#[derive(Deserialize)]
struct EmbedReply {
    #[serde(default)]
    model: Option<String>,
    embeddings: Vec<Box<RawValue>>,
    #[serde(flatten)]
    metrics: Metrics,
}

/// Reads a 2xx Ollama answer. `model` is the requested one, used when the answer names none.
pub(crate) fn translate(kind: &ReplyKind, bytes: &[u8], model: &str) -> Result<Translated, String> {
    let (body, metrics, model) = match kind {
        ReplyKind::Chat => {
            let r: ChatReply = parse(bytes, "/api/chat")?;
            let model = r.model.unwrap_or_else(|| model.to_owned());
            (
                chat_completion(&model, r.message, r.done_reason.as_deref(), &r.metrics),
                r.metrics,
                model,
            )
        }
        ReplyKind::Generate { echo_prompt } => {
            let r: GenerateReply = parse(bytes, "/api/generate")?;
            let model = r.model.unwrap_or_else(|| model.to_owned());
            let text = match echo_prompt {
                Some(prompt) => format!("{prompt}{}", r.response),
                None => r.response,
            };
            let body = json!({
                "id": format!("cmpl-{}", uuid::Uuid::new_v4().simple()),
                "object": "text_completion",
                "created": now(),
                "model": model,
                "choices": [{
                    "text": text,
                    "index": 0,
                    "logprobs": null,
                    "finish_reason": finish_reason(r.done_reason.as_deref()),
                }],
                "usage": usage(&r.metrics),
            });
            (body, r.metrics, model)
        }
        ReplyKind::Embed { base64 } => {
            let r: EmbedReply = parse(bytes, "/api/embed")?;
            let model = r.model.unwrap_or_else(|| model.to_owned());
            let body = embedding_list(&model, &r.embeddings, r.metrics.prompt_eval_count, *base64)?;
            return Ok(translated(body, &r.metrics, model));
        }
    };
    let body = serde_json::value::to_raw_value(&body)
        .map_err(|e| format!("could not encode the answer: {e}"))?;
    Ok(translated(body, &metrics, model))
}

fn translated(body: Box<RawValue>, metrics: &Metrics, model: String) -> Translated {
    Translated {
        body,
        usage: Some(TokenUsage {
            prompt_tokens: metrics.prompt_eval_count,
            completion_tokens: metrics.eval_count,
            cached_tokens: None,
        }),
        timing: Some(timing(metrics)),
        model: Some(model),
    }
}

#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<Embedding<'a>>,
    model: &'a str,
    usage: EmbeddingUsage,
}

#[derive(Serialize)]
struct Embedding<'a> {
    object: &'static str,
    index: usize,
    embedding: EmbeddingValue<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum EmbeddingValue<'a> {
    /// Ollama's numbers, text unchanged: a float32 written as float64 would gain noise digits.
    Floats(&'a RawValue),
    Base64(String),
}

#[derive(Serialize)]
struct EmbeddingUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

fn embedding_list(
    model: &str,
    embeddings: &[Box<RawValue>],
    prompt_eval_count: Option<u64>,
    base64: bool,
) -> Result<Box<RawValue>, String> {
    let mut data = Vec::with_capacity(embeddings.len());
    for (index, raw) in embeddings.iter().enumerate() {
        // Read as numbers either way, so a malformed vector is caught here.
        let floats: Vec<f32> = serde_json::from_str(raw.get()).map_err(|e| {
            format!("Ollama's /api/embed answer holds a vector that is not numbers: {e}")
        })?;
        let embedding = if base64 {
            EmbeddingValue::Base64(floats_base64(&floats))
        } else {
            EmbeddingValue::Floats(raw)
        };
        data.push(Embedding { object: "embedding", index, embedding });
    }
    let prompt_tokens = prompt_eval_count.unwrap_or(0);
    let list = EmbeddingList {
        object: "list",
        data,
        model,
        usage: EmbeddingUsage { prompt_tokens, total_tokens: prompt_tokens },
    };
    let text =
        serde_json::to_string(&list).map_err(|e| format!("could not encode the answer: {e}"))?;
    // A raw vector may carry the server's line breaks; an output line must not.
    single_line(&text).map_err(|e| format!("could not encode the answer: {e}"))
}

/// Ollama's load duration from the answer to a load request, where it reports one.
pub(crate) fn load_duration(bytes: &[u8]) -> Option<Duration> {
    serde_json::from_slice::<Metrics>(bytes).ok()?.load_duration.map(Duration::from_nanos)
}

fn parse<'a, T: Deserialize<'a>>(bytes: &'a [u8], path: &str) -> Result<T, String> {
    serde_json::from_slice(bytes)
        .map_err(|e| format!("Ollama's {path} answer could not be read: {e}"))
}

fn chat_completion(
    model: &str,
    message: ChatMessage,
    done_reason: Option<&str>,
    metrics: &Metrics,
) -> Value {
    let tool_calls: Vec<Value> = message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .map(|call| {
            // OpenAI carries arguments as JSON text, Ollama as an object.
            let arguments = match call.function.arguments {
                Value::String(text) => text,
                Value::Null => "{}".to_owned(),
                other => other.to_string(),
            };
            json!({
                "id": call.id.unwrap_or_else(|| format!("call_{}", uuid::Uuid::new_v4().simple())),
                "type": "function",
                "function": {"name": call.function.name, "arguments": arguments},
            })
        })
        .collect();
    let content = message.content.unwrap_or_default();
    let mut reply = Map::new();
    reply.insert("role".into(), "assistant".into());
    // OpenAI sends null content beside tool calls.
    reply.insert(
        "content".into(),
        if content.is_empty() && !tool_calls.is_empty() { Value::Null } else { content.into() },
    );
    if let Some(thinking) = message.thinking.filter(|t| !t.is_empty()) {
        // Ollama's own OpenAI layer names a thinking model's reasoning `reasoning`.
        reply.insert("reasoning".into(), thinking.into());
    }
    let finish = if tool_calls.is_empty() { finish_reason(done_reason) } else { "tool_calls" };
    if !tool_calls.is_empty() {
        reply.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    json!({
        "id": format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        "object": "chat.completion",
        "created": now(),
        "model": model,
        "choices": [{"index": 0, "message": reply, "logprobs": null, "finish_reason": finish}],
        "usage": usage(metrics),
    })
}

fn finish_reason(done_reason: Option<&str>) -> &'static str {
    match done_reason {
        Some("length") => "length",
        _ => "stop",
    }
}

/// The OpenAI usage block: counts Ollama left out show as 0 here (the field is not optional
/// in OpenAI's shape) but stay unknown in the worker's [`TokenUsage`].
fn usage(m: &Metrics) -> Value {
    let prompt = m.prompt_eval_count.unwrap_or(0);
    let completion = m.eval_count.unwrap_or(0);
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt.saturating_add(completion),
    })
}

fn timing(m: &Metrics) -> OllamaTiming {
    let d = |ns: Option<u64>| Duration::from_nanos(ns.unwrap_or(0));
    OllamaTiming {
        load_duration: d(m.load_duration),
        prompt_eval_duration: d(m.prompt_eval_duration),
        eval_duration: d(m.eval_duration),
        total_duration: d(m.total_duration),
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// OpenAI's base64 embedding: the little-endian float32 bytes, standard base64 with padding.
fn floats_base64(floats: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = floats.iter().flat_map(|f| f.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_encodings() {
        // 1.0f32 = 00 00 80 3f; 1.0, 2.0 = 00 00 80 3f 00 00 00 40
        assert_eq!(floats_base64(&[1.0]), "AACAPw==");
        assert_eq!(floats_base64(&[1.0, 2.0]), "AACAPwAAAEA=");
        assert_eq!(floats_base64(&[]), "");
    }

    #[test]
    fn tool_calls_become_openai_tool_calls_with_json_text_arguments() {
        let reply = br#"{"model":"m","message":{"role":"assistant","content":"","tool_calls":[
            {"function":{"name":"get_weather","arguments":{"city":"Paris"}}}]},
            "done":true,"done_reason":"stop","prompt_eval_count":5,"eval_count":2}"#;
        let t = translate(&ReplyKind::Chat, reply, "m").unwrap();
        let v: Value = serde_json::from_str(t.body.get()).unwrap();
        let choice = &v["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert!(choice["message"]["content"].is_null());
        let call = &choice["message"]["tool_calls"][0];
        assert_eq!(call["type"], "function");
        assert!(call["id"].as_str().unwrap().starts_with("call_"));
        assert_eq!(call["function"]["name"], "get_weather");
        let args: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args, json!({"city":"Paris"}));
    }

    #[test]
    fn a_reply_without_the_expected_fields_is_an_error_not_a_panic() {
        for junk in [&b"not json"[..], b"{}", b"[1,2]", br#"{"message":"x"}"#] {
            assert!(translate(&ReplyKind::Chat, junk, "m").is_err());
            assert!(translate(&ReplyKind::Generate { echo_prompt: None }, junk, "m").is_err());
            assert!(translate(&ReplyKind::Embed { base64: false }, junk, "m").is_err());
        }
    }
}
