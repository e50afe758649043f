//! OpenAI-compatible servers (vLLM, llama.cpp server, ...): the body goes through as it came,
//! apart from the few fields a batch must control, and the reply comes back as it is.

use super::wire::{
    Invalid, Translated, error_body, error_text, error_type, lenient_u64, single_line,
};
use nightshift_shared::messages::TokenUsage;
use nightshift_shared::openai::Endpoint;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// Prepares a request body for an OpenAI-compatible server: `stream` off (a batch needs one
/// answer) and the generated-token cap enforced; every other field is kept byte for byte.
pub(crate) fn prepare_body(
    endpoint: Endpoint,
    body: &RawValue,
    max_tokens_cap: Option<u32>,
) -> Result<(Vec<u8>, Option<String>), Invalid> {
    // Top-level keys only: nested values stay raw so numbers and strings keep their exact text.
    let mut fields: BTreeMap<String, Box<RawValue>> = serde_json::from_str(body.get())
        .map_err(|_| Invalid::new("The request body must be a JSON object.", None))?;
    let model = fields.get("model").and_then(|m| serde_json::from_str::<String>(m.get()).ok());

    if endpoint != Endpoint::Embeddings {
        fields.insert("stream".into(), RawValue::FALSE.to_owned());
        // Servers reject stream_options when streaming is off (vLLM does).
        fields.remove("stream_options");
        // The limit goes in `max_tokens`, the key every server reads (Ollama's /v1 reads no
        // other), and in `max_completion_tokens` too when the request used that newer name
        // (which OpenAI and vLLM prefer). The cap bounds it either way.
        let newer = endpoint == Endpoint::ChatCompletions;
        let asked =
            |key: &str| fields.get(key).and_then(|v| serde_json::from_str::<u64>(v.get()).ok());
        let asked =
            newer.then(|| asked("max_completion_tokens")).flatten().or_else(|| asked("max_tokens"));
        let limit = match (asked, max_tokens_cap.map(u64::from)) {
            (Some(asked), Some(cap)) => Some(asked.min(cap)),
            (asked, cap) => asked.or(cap),
        };
        if let Some(limit) = limit {
            let limit = serde_json::value::to_raw_value(&limit).unwrap_or_default();
            if newer && fields.contains_key("max_completion_tokens") {
                fields.insert("max_completion_tokens".into(), limit.clone());
            }
            fields.insert("max_tokens".into(), limit);
        }
    }
    let bytes = serde_json::to_vec(&fields)
        .map_err(|e| Invalid::new(format!("The request body could not be encoded: {e}"), None))?;
    Ok((bytes, model))
}

#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default, deserialize_with = "lenient_u64")]
    prompt_tokens: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptTokensDetails>,
}

#[derive(Deserialize)]
struct PromptTokensDetails {
    #[serde(default, deserialize_with = "lenient_u64")]
    cached_tokens: Option<u64>,
}

/// A 2xx answer: passed on as the server wrote it (on one line), usage read from it.
pub(crate) fn translate_reply(bytes: &[u8]) -> Result<Translated, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the answer is not UTF-8".to_owned())?;
    let body = single_line(text).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let reply: Reply = serde_json::from_str(body.get())
        .map_err(|e| format!("the answer is not an OpenAI response object: {e}"))?;
    let usage = reply.usage.map(|u| TokenUsage {
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
        cached_tokens: u.prompt_tokens_details.and_then(|d| d.cached_tokens),
    });
    Ok(Translated { body, usage, timing: None, model: reply.model })
}

/// The body of a final non-2xx answer: the server's own OpenAI error object when it sent one,
/// else one built from what it sent.
pub(crate) fn error_reply_body(status: u16, bytes: &[u8]) -> Box<RawValue> {
    let text = String::from_utf8_lossy(bytes);
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
        if value.get("error").is_some_and(serde_json::Value::is_object)
            && let Ok(body) = single_line(&text)
        {
            return body;
        }
        // vLLM's older shape: {"object":"error","message":..,"type":..,"param":..,"code":..}
        if let Some(message) = value.get("message").and_then(|m| m.as_str()) {
            let kind = value.get("type").and_then(|t| t.as_str()).unwrap_or(error_type(status));
            let param = value.get("param").and_then(|p| p.as_str()).map(str::to_owned);
            let code = value.get("code").and_then(json_code);
            return error_body(message, kind, param, code);
        }
    }
    error_body(&error_text(bytes), error_type(status), None, None)
}

fn json_code(code: &serde_json::Value) -> Option<String> {
    match code {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn prepared(endpoint: Endpoint, body: &str, cap: Option<u32>) -> Value {
        let body = RawValue::from_string(body.into()).unwrap();
        let (bytes, _) = prepare_body(endpoint, &body, cap).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn chat_body_keeps_every_field_but_forces_stream_off_and_caps_max_tokens() {
        let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.7,
            "stream":true,"stream_options":{"include_usage":true},"max_tokens":5000,"x_extra":{"a":[1,2]}}"#;
        let v = prepared(Endpoint::ChatCompletions, body, Some(256));
        assert_eq!(
            v,
            json!({"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.7,
                "stream":false,"max_tokens":256,"x_extra":{"a":[1,2]}})
        );
    }

    #[test]
    fn the_limit_is_written_to_max_tokens_which_every_server_reads() {
        // Ollama's /v1 reads only max_tokens: a limit left in max_completion_tokens alone would
        // leave generation unbounded there.
        let body = r#"{"model":"m","messages":[],"max_completion_tokens":9000}"#;
        let v = prepared(Endpoint::ChatCompletions, body, Some(100));
        assert_eq!(
            (v["max_completion_tokens"].clone(), v["max_tokens"].clone()),
            (json!(100), json!(100))
        );
        let body = r#"{"model":"m","messages":[],"max_completion_tokens":20,"max_tokens":50}"#;
        let v = prepared(Endpoint::ChatCompletions, body, Some(100));
        assert_eq!(
            (v["max_completion_tokens"].clone(), v["max_tokens"].clone()),
            (json!(20), json!(20))
        );
        let body = r#"{"model":"m","messages":[],"max_completion_tokens":30}"#;
        let v = prepared(Endpoint::ChatCompletions, body, None);
        assert_eq!(v["max_tokens"], 30);

        let below = prepared(
            Endpoint::Completions,
            r#"{"model":"m","prompt":"p","max_tokens":10}"#,
            Some(100),
        );
        assert_eq!(below["max_tokens"], 10, "a request under the cap keeps its own limit");

        let unset = prepared(Endpoint::Completions, r#"{"model":"m","prompt":"p"}"#, Some(100));
        assert_eq!(unset["max_tokens"], 100, "a request with no limit gets the cap");
    }

    #[test]
    fn embeddings_body_is_untouched() {
        let body = r#"{"model":"e","input":["a","b"],"dimensions":8}"#;
        let v = prepared(Endpoint::Embeddings, body, Some(10));
        assert_eq!(v, json!({"model":"e","input":["a","b"],"dimensions":8}));
    }

    #[test]
    fn reply_usage_is_read_and_a_pretty_printed_body_becomes_one_line() {
        let reply = b"{\n  \"id\": \"x\",\n  \"model\": \"m\",\n  \"usage\": {\"prompt_tokens\": 7, \"completion_tokens\": 3,\n  \"prompt_tokens_details\": {\"cached_tokens\": 4}}\n}\n";
        let t = translate_reply(reply).unwrap();
        assert!(!t.body.get().contains('\n'));
        assert_eq!(t.model.as_deref(), Some("m"));
        let usage = t.usage.unwrap();
        assert_eq!(
            (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens),
            (Some(7), Some(3), Some(4))
        );
    }

    #[test]
    fn vllm_style_error_is_reshaped_and_plain_text_is_wrapped() {
        let vllm = br#"{"object":"error","message":"bad","type":"BadRequestError","param":null,"code":400}"#;
        let v: Value = serde_json::from_str(error_reply_body(400, vllm).get()).unwrap();
        assert_eq!(
            v,
            json!({"error":{"message":"bad","type":"BadRequestError","param":null,"code":"400"}})
        );

        let v: Value = serde_json::from_str(error_reply_body(404, b"no such route").get()).unwrap();
        assert_eq!(v["error"]["message"], "no such route");
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }
}
