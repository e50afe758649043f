//! OpenAI request bodies rewritten as Ollama native requests (`/api/chat`, `/api/generate`,
//! `/api/embed`), field names as Ollama's API documents them.

use super::ReplyKind;
use super::messages::chat_messages;
use crate::backend::wire::Invalid;
use nightshift_shared::openai::Endpoint;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

/// An Ollama request ready to send, and how to read its answer.
#[derive(Debug)]
pub(crate) struct OllamaRequest {
    pub path: &'static str,
    pub body: Value,
    pub model: String,
    pub reply: ReplyKind,
}

/// Rewrites one OpenAI body for Ollama. `keep_alive` goes into every request so the model
/// stays loaded between batches; `max_tokens_cap` bounds `num_predict`.
pub(crate) fn build(
    endpoint: Endpoint,
    body: &RawValue,
    keep_alive: Option<&Value>,
    max_tokens_cap: Option<u32>,
) -> Result<OllamaRequest, Invalid> {
    let Ok(Value::Object(req)) = serde_json::from_str::<Value>(body.get()) else {
        return Err(Invalid::new("The request body must be a JSON object.", None));
    };
    let model = match req.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => {
            return Err(Invalid::new("Missing required parameter: 'model'.", Some("model")));
        }
    };
    let mut out = Map::new();
    out.insert("model".into(), Value::String(model.clone()));
    if let Some(keep_alive) = keep_alive {
        out.insert("keep_alive".into(), keep_alive.clone());
    }

    let (path, reply) = match endpoint {
        Endpoint::ChatCompletions => {
            let messages = match req.get("messages") {
                Some(Value::Array(m)) => chat_messages(m)?,
                _ => {
                    return Err(Invalid::new(
                        "Missing required parameter: 'messages'.",
                        Some("messages"),
                    ));
                }
            };
            out.insert("messages".into(), Value::Array(messages));
            out.insert("stream".into(), Value::Bool(false));
            out.insert("options".into(), Value::Object(options(&req, endpoint, max_tokens_cap)?));
            if let Some(format) = format(req.get("response_format"))? {
                out.insert("format".into(), format);
            }
            let tools_off = req.get("tool_choice").and_then(Value::as_str) == Some("none");
            if let Some(tools @ Value::Array(_)) = req.get("tools")
                && !tools_off
            {
                out.insert("tools".into(), tools.clone());
            }
            if let Some(think) = think(present(&req, "reasoning_effort"))? {
                out.insert("think".into(), think);
            }
            ("/api/chat", ReplyKind::Chat)
        }
        Endpoint::Completions => {
            let prompt = prompt(req.get("prompt"))?;
            let echo = req.get("echo").and_then(Value::as_bool) == Some(true);
            out.insert("prompt".into(), Value::String(prompt.clone()));
            out.insert("stream".into(), Value::Bool(false));
            out.insert("options".into(), Value::Object(options(&req, endpoint, max_tokens_cap)?));
            if let Some(suffix @ Value::String(_)) = req.get("suffix") {
                out.insert("suffix".into(), suffix.clone());
            }
            ("/api/generate", ReplyKind::Generate { echo_prompt: echo.then_some(prompt) })
        }
        Endpoint::Embeddings => {
            out.insert("input".into(), embed_input(req.get("input"))?);
            out.insert("truncate".into(), Value::Bool(true));
            match req.get("dimensions") {
                None | Some(Value::Null) => {}
                Some(d @ Value::Number(n)) if n.is_u64() => {
                    out.insert("dimensions".into(), d.clone());
                }
                Some(_) => {
                    return Err(Invalid::new(
                        "'dimensions' must be a positive integer.",
                        Some("dimensions"),
                    ));
                }
            }
            let base64 = match req.get("encoding_format") {
                None | Some(Value::Null) => false,
                Some(Value::String(f)) if f == "float" => false,
                Some(Value::String(f)) if f == "base64" => true,
                Some(_) => {
                    return Err(Invalid::new(
                        "'encoding_format' must be 'float' or 'base64'.",
                        Some("encoding_format"),
                    ));
                }
            };
            ("/api/embed", ReplyKind::Embed { base64 })
        }
    };
    Ok(OllamaRequest { path, body: Value::Object(out), model, reply })
}

/// Sampling parameters, renamed into Ollama's `options`.
fn options(
    req: &Map<String, Value>,
    endpoint: Endpoint,
    cap: Option<u32>,
) -> Result<Map<String, Value>, Invalid> {
    let mut options = Map::new();
    if let Some(n) = present(req, "n")
        && n.as_u64() != Some(1)
    {
        return Err(Invalid::new(
            "The Ollama backend returns one choice per request: 'n' must be 1.",
            Some("n"),
        ));
    }
    let limit_key = if endpoint == Endpoint::ChatCompletions
        && present(req, "max_completion_tokens").is_some()
    {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    let asked = match present(req, limit_key) {
        None => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            Invalid::new(format!("'{limit_key}' must be a non-negative integer."), Some(limit_key))
        })?),
    };
    let num_predict = match (asked, cap) {
        (Some(asked), Some(cap)) => Some(asked.min(u64::from(cap))),
        (asked, cap) => asked.or(cap.map(u64::from)),
    };
    if let Some(n) = num_predict {
        options.insert("num_predict".into(), n.into());
    }
    for key in ["temperature", "top_p", "frequency_penalty", "presence_penalty"] {
        if let Some(v) = present(req, key) {
            if !v.is_number() {
                return Err(Invalid::new(format!("'{key}' must be a number."), Some(key)));
            }
            options.insert(key.into(), v.clone());
        }
    }
    if let Some(seed) = present(req, "seed") {
        if !(seed.is_i64() || seed.is_u64()) {
            return Err(Invalid::new("'seed' must be an integer.", Some("seed")));
        }
        options.insert("seed".into(), seed.clone());
    }
    match present(req, "stop") {
        None => {}
        Some(Value::String(s)) => {
            options.insert("stop".into(), json!([s]));
        }
        Some(Value::Array(stops)) if stops.iter().all(Value::is_string) => {
            options.insert("stop".into(), Value::Array(stops.clone()));
        }
        Some(_) => {
            return Err(Invalid::new(
                "'stop' must be a string or an array of strings.",
                Some("stop"),
            ));
        }
    }
    Ok(options)
}

/// A field that is there and not `null` (OpenAI clients send `null` for "not set").
fn present<'a>(req: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    req.get(key).filter(|v| !v.is_null())
}

/// `reasoning_effort` as Ollama's `think`, the way Ollama's own OpenAI layer maps it.
fn think(effort: Option<&Value>) -> Result<Option<Value>, Invalid> {
    match effort.map(|e| e.as_str()) {
        None => Ok(None),
        Some(Some("none")) => Ok(Some(Value::Bool(false))),
        Some(Some(level @ ("low" | "medium" | "high"))) => Ok(Some(Value::String(level.into()))),
        Some(_) => Err(Invalid::new(
            "'reasoning_effort' must be 'none', 'low', 'medium' or 'high' with the Ollama backend.",
            Some("reasoning_effort"),
        )),
    }
}

/// `response_format` as Ollama's `format`: `"json"` or the JSON schema itself.
fn format(response_format: Option<&Value>) -> Result<Option<Value>, Invalid> {
    let Some(rf) = response_format.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    match rf.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(Value::String("json".into()))),
        Some("json_schema") => match rf.pointer("/json_schema/schema") {
            Some(schema @ Value::Object(_)) => Ok(Some(schema.clone())),
            _ => Err(Invalid::new(
                "'response_format.json_schema.schema' must be a JSON schema object.",
                Some("response_format"),
            )),
        },
        _ => Err(Invalid::new(
            "'response_format.type' must be 'text', 'json_object' or 'json_schema'.",
            Some("response_format"),
        )),
    }
}

/// The one prompt of a completions request.
fn prompt(prompt: Option<&Value>) -> Result<String, Invalid> {
    match prompt {
        Some(Value::String(p)) => Ok(p.clone()),
        Some(Value::Array(items)) => match items.as_slice() {
            [Value::String(p)] => Ok(p.clone()),
            [_] => Err(Invalid::new(
                "The Ollama backend takes the prompt as text, not tokens.",
                Some("prompt"),
            )),
            _ => Err(Invalid::new(
                "batch Ollama backend supports one prompt per request",
                Some("prompt"),
            )),
        },
        _ => Err(Invalid::new("Missing required parameter: 'prompt'.", Some("prompt"))),
    }
}

/// The embeddings input as Ollama takes it: one string or a list of strings.
fn embed_input(input: Option<&Value>) -> Result<Value, Invalid> {
    match input {
        Some(s @ Value::String(_)) => Ok(s.clone()),
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_string) => {
            Ok(Value::Array(items.clone()))
        }
        Some(Value::Array(_)) => Err(Invalid::new(
            "The Ollama backend embeds text: 'input' must be a string or a non-empty array of strings.",
            Some("input"),
        )),
        _ => Err(Invalid::new("Missing required parameter: 'input'.", Some("input"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_chat(body: Value) -> Result<OllamaRequest, Invalid> {
        let body = serde_json::value::to_raw_value(&body).unwrap();
        build(Endpoint::ChatCompletions, &body, None, None)
    }

    #[test]
    fn requests_ollama_cannot_run_as_written_are_refused_with_the_param_named() {
        let remote_image = json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]});
        let several_choices = json!({"model": "m", "messages": [], "n": 3});
        let audio = json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}]});
        let no_model = json!({"messages": []});
        let bad_effort = json!({"model": "m", "messages": [], "reasoning_effort": "extreme"});
        for (body, param) in [
            (remote_image, "messages"),
            (several_choices, "n"),
            (audio, "messages"),
            (no_model, "model"),
            (bad_effort, "reasoning_effort"),
        ] {
            let err = build_chat(body).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(param), "{}", err.message);
        }
    }

    #[test]
    fn nulls_mean_not_set_and_reasoning_effort_becomes_think() {
        let r = build_chat(json!({"model": "m", "messages": [], "temperature": null,
            "max_tokens": null, "stop": null, "response_format": null, "reasoning_effort": "none"}))
        .unwrap();
        assert_eq!(r.body["options"], json!({}));
        assert!(r.body.get("format").is_none());
        assert_eq!(r.body["think"], false);
    }

    #[test]
    fn token_prompts_and_token_inputs_are_refused() {
        let tokens =
            serde_json::value::to_raw_value(&json!({"model": "m", "prompt": [[1, 2, 3]]})).unwrap();
        assert!(build(Endpoint::Completions, &tokens, None, None).is_err());
        let tokens =
            serde_json::value::to_raw_value(&json!({"model": "m", "input": [[1, 2]]})).unwrap();
        assert!(build(Endpoint::Embeddings, &tokens, None, None).is_err());
    }
}
