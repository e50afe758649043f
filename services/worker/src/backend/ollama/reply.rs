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
    #[serde(default)]
    created_at: Option<String>,
    message: ChatMessage,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    logprobs: Option<Vec<Logprob>>,
    #[serde(flatten)]
    metrics: Metrics,
}

/// One generated token's log probability, with the most likely alternatives, as Ollama gives it.
#[derive(Deserialize)]
struct Logprob {
    token: String,
    logprob: f64,
    #[serde(default)]
    bytes: Option<Vec<u8>>,
    #[serde(default)]
    top_logprobs: Vec<TokenLogprob>,
}

#[derive(Deserialize)]
struct TokenLogprob {
    token: String,
    logprob: f64,
    #[serde(default)]
    bytes: Option<Vec<u8>>,
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
    #[serde(default)]
    created_at: Option<String>,
    response: String,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    logprobs: Option<Vec<Logprob>>,
    #[serde(flatten)]
    metrics: Metrics,
}

/// What Ollama's own OpenAI layer names every answer's system: the SDK's objects carry it.
const SYSTEM_FINGERPRINT: &str = "fp_ollama";

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
            let mut r: ChatReply = parse(bytes, "/api/chat")?;
            let model = r.model.take().unwrap_or_else(|| model.to_owned());
            let metrics = std::mem::take(&mut r.metrics);
            (chat_completion(&model, r, &metrics), metrics, model)
        }
        ReplyKind::Generate { echo_prompt, logprobs } => {
            let r: GenerateReply = parse(bytes, "/api/generate")?;
            let model = r.model.unwrap_or_else(|| model.to_owned());
            let offset = echo_prompt.as_ref().map_or(0, String::len);
            let logprobs = match (logprobs, r.logprobs) {
                (true, Some(tokens)) => legacy_logprobs(&tokens, offset),
                _ => Value::Null,
            };
            let text = match echo_prompt {
                Some(prompt) => format!("{prompt}{}", r.response),
                None => r.response,
            };
            let body = json!({
                "id": format!("cmpl-{}", uuid::Uuid::new_v4().simple()),
                "object": "text_completion",
                "created": created(r.created_at.as_deref()),
                "model": model,
                "system_fingerprint": SYSTEM_FINGERPRINT,
                "choices": [{
                    "text": text,
                    "index": 0,
                    "logprobs": logprobs,
                    "finish_reason": finish_reason(r.done_reason.as_deref(), false),
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

fn chat_completion(model: &str, reply: ChatReply, metrics: &Metrics) -> Value {
    let ChatReply { message, done_reason, logprobs, created_at, .. } = reply;
    let tool_calls: Vec<Value> = message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(index, call)| {
            // OpenAI carries arguments as JSON text, Ollama as an object.
            let arguments = match call.function.arguments {
                Value::String(text) => text,
                Value::Null => "{}".to_owned(),
                other => other.to_string(),
            };
            json!({
                "id": call.id.unwrap_or_else(|| format!("call_{}", uuid::Uuid::new_v4().simple())),
                "index": index,
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
    let finish = finish_reason(done_reason.as_deref(), !tool_calls.is_empty());
    if !tool_calls.is_empty() {
        reply.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    let logprobs = match logprobs {
        Some(tokens) => {
            json!({"content": tokens.iter().map(chat_logprob).collect::<Vec<_>>(), "refusal": null})
        }
        None => Value::Null,
    };
    json!({
        "id": format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        "object": "chat.completion",
        "created": created(created_at.as_deref()),
        "model": model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [{"index": 0, "message": reply, "logprobs": logprobs, "finish_reason": finish}],
        "usage": usage(metrics),
    })
}

/// OpenAI's `finish_reason` from Ollama's `done_reason`, as Ollama's /v1 derives it: `stop`
/// becomes `tool_calls` when the model called tools (`length` stays `length`), other reasons go
/// through as they are, and a missing one is `stop` (OpenAI's field is never null).
fn finish_reason(done_reason: Option<&str>, called_tools: bool) -> String {
    match done_reason.filter(|r| !r.is_empty()) {
        None | Some("stop") if called_tools => "tool_calls".into(),
        None => "stop".into(),
        Some(reason) => reason.to_owned(),
    }
}

/// One token of a chat answer's `logprobs.content`, in OpenAI's shape (`bytes` and
/// `top_logprobs` always there, as the SDK's types require).
fn chat_logprob(t: &Logprob) -> Value {
    let alternatives: Vec<Value> = t
        .top_logprobs
        .iter()
        .map(|a| json!({"token": a.token, "logprob": a.logprob, "bytes": token_bytes(&a.token, &a.bytes)}))
        .collect();
    json!({
        "token": t.token,
        "logprob": t.logprob,
        "bytes": token_bytes(&t.token, &t.bytes),
        "top_logprobs": alternatives,
    })
}

fn token_bytes(token: &str, bytes: &Option<Vec<u8>>) -> Vec<u8> {
    bytes.clone().unwrap_or_else(|| token.as_bytes().to_vec())
}

/// The completions API's legacy `logprobs`: parallel lists of tokens, their log probabilities,
/// the alternatives of each and where each starts in the text (after an echoed prompt).
fn legacy_logprobs(tokens: &[Logprob], prompt_len: usize) -> Value {
    let mut offset = prompt_len;
    let mut text_offset = Vec::with_capacity(tokens.len());
    for t in tokens {
        text_offset.push(offset);
        offset += t.token.len();
    }
    let top: Vec<Value> = tokens
        .iter()
        .map(|t| {
            let alternatives: Map<String, Value> =
                t.top_logprobs.iter().map(|a| (a.token.clone(), json!(a.logprob))).collect();
            Value::Object(alternatives)
        })
        .collect();
    json!({
        "tokens": tokens.iter().map(|t| t.token.as_str()).collect::<Vec<_>>(),
        "token_logprobs": tokens.iter().map(|t| t.logprob).collect::<Vec<_>>(),
        "top_logprobs": top,
        "text_offset": text_offset,
    })
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

/// The answer's `created_at` (RFC 3339, as Ollama writes it) in Unix seconds, as Ollama's /v1
/// sets `created`; our clock only when the answer has none that reads.
fn created(created_at: Option<&str>) -> u64 {
    created_at.and_then(unix_seconds).unwrap_or_else(|| {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    })
}

/// `2026-12-01T18:27:16.123456789Z` or `...+01:00` in Unix seconds.
fn unix_seconds(text: &str) -> Option<u64> {
    let (date, rest) = text.split_once('T')?;
    let mut date = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let (clock, offset_secs) = match rest.find(['Z', 'z', '+', '-']) {
        Some(at) => {
            let (clock, zone) = rest.split_at(at);
            let offset = match zone.as_bytes()[0] {
                b'Z' | b'z' => 0,
                sign => {
                    let (h, m) = zone[1..].split_once(':')?;
                    let secs = h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60;
                    if sign == b'-' { -secs } else { secs }
                }
            };
            (clock, offset)
        }
        None => (rest, 0),
    };
    let mut clock = clock.split(':');
    let hour = clock.next()?.parse::<i64>().ok()?;
    let minute = clock.next()?.parse::<i64>().ok()?;
    let second = clock.next()?.split('.').next()?.parse::<i64>().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    u64::try_from(secs).ok()
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
    fn finish_reason_is_derived_as_ollamas_v1_does() {
        assert_eq!(finish_reason(Some("stop"), false), "stop");
        assert_eq!(finish_reason(Some("stop"), true), "tool_calls");
        assert_eq!(finish_reason(Some("length"), true), "length");
        assert_eq!(finish_reason(Some("length"), false), "length");
        assert_eq!(finish_reason(None, false), "stop");
        assert_eq!(finish_reason(Some(""), true), "tool_calls");
        assert_eq!(finish_reason(Some("unload"), false), "unload");
    }

    #[test]
    fn created_is_the_answers_created_at_and_the_fingerprint_ollamas() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("2026-12-01T18:27:16.123456789Z"), Some(1_796_149_636));
        assert_eq!(unix_seconds("2026-12-01T19:27:16+01:00"), Some(1_796_149_636));
        assert_eq!(unix_seconds("2000-02-29T12:00:00-05:30"), Some(951_845_400));
        assert_eq!(unix_seconds("yesterday"), None);
        let reply = br#"{"model":"m","created_at":"2026-12-01T18:27:16.5Z","message":{"role":"assistant","content":"hi"},
            "done":true,"done_reason":"stop","eval_count":1}"#;
        let v: Value =
            serde_json::from_str(translate(&ReplyKind::Chat, reply, "m").unwrap().body.get())
                .unwrap();
        assert_eq!(v["created"], 1_796_149_636u64);
        assert_eq!(v["system_fingerprint"], "fp_ollama");
        assert!(v["choices"][0]["logprobs"].is_null());
    }

    #[test]
    fn logprobs_come_back_in_openais_shapes() {
        let tokens = r#"[{"token":"Hi","logprob":-0.5,"bytes":[72,105],"top_logprobs":[{"token":"Hi","logprob":-0.5},{"token":"Yo","logprob":-1.5}]},
            {"token":"!","logprob":-0.1}]"#;
        let chat = format!(
            r#"{{"model":"m","message":{{"role":"assistant","content":"Hi!"}},"done":true,"done_reason":"stop","logprobs":{tokens}}}"#
        );
        let v: Value = serde_json::from_str(
            translate(&ReplyKind::Chat, chat.as_bytes(), "m").unwrap().body.get(),
        )
        .unwrap();
        let content = &v["choices"][0]["logprobs"]["content"];
        assert_eq!(content[0]["token"], "Hi");
        assert_eq!(content[0]["bytes"], json!([72, 105]));
        assert_eq!(
            content[0]["top_logprobs"][1],
            json!({"token": "Yo", "logprob": -1.5, "bytes": [89, 111]})
        );
        assert_eq!(content[1]["top_logprobs"], json!([]));

        let generate = format!(
            r#"{{"model":"m","response":"Hi!","done":true,"done_reason":"length","logprobs":{tokens}}}"#
        );
        let kind = ReplyKind::Generate { echo_prompt: Some("Say: ".into()), logprobs: true };
        let v: Value =
            serde_json::from_str(translate(&kind, generate.as_bytes(), "m").unwrap().body.get())
                .unwrap();
        let choice = &v["choices"][0];
        assert_eq!(choice["text"], "Say: Hi!");
        assert_eq!(choice["finish_reason"], "length");
        assert_eq!(choice["logprobs"]["tokens"], json!(["Hi", "!"]));
        assert_eq!(choice["logprobs"]["token_logprobs"], json!([-0.5, -0.1]));
        assert_eq!(choice["logprobs"]["text_offset"], json!([5, 7]));
        assert_eq!(choice["logprobs"]["top_logprobs"][0], json!({"Hi": -0.5, "Yo": -1.5}));
    }

    #[test]
    fn a_reply_without_the_expected_fields_is_an_error_not_a_panic() {
        for junk in [&b"not json"[..], b"{}", b"[1,2]", br#"{"message":"x"}"#] {
            assert!(translate(&ReplyKind::Chat, junk, "m").is_err());
            let generate = ReplyKind::Generate { echo_prompt: None, logprobs: false };
            assert!(translate(&generate, junk, "m").is_err());
            assert!(translate(&ReplyKind::Embed { base64: false }, junk, "m").is_err());
        }
    }
}
