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
                // Ollama's native API reads no messages as "load the model" and answers 200
                // with no text; its /v1 layer refuses them, and so do we.
                Some(Value::Array(m)) if m.is_empty() => {
                    return Err(Invalid::new("[] is too short - 'messages'", Some("messages")));
                }
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
            if let Some(think) = think(&req)? {
                out.insert("think".into(), think);
            }
            let logprobs = logprobs(&req)?;
            if let Some(top) = logprobs {
                out.insert("logprobs".into(), Value::Bool(true));
                out.insert("top_logprobs".into(), top.into());
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
            // The legacy API's `logprobs` is the number of alternatives per token (0-5).
            let logprobs = match present(&req, "logprobs") {
                None => None,
                Some(n) => match n.as_u64() {
                    Some(n) if n <= 20 => Some(n),
                    _ => {
                        return Err(Invalid::new(
                            "'logprobs' must be an integer between 0 and 20.",
                            Some("logprobs"),
                        ));
                    }
                },
            };
            if let Some(top) = logprobs {
                out.insert("logprobs".into(), Value::Bool(true));
                out.insert("top_logprobs".into(), top.into());
            }
            let reply = ReplyKind::Generate {
                echo_prompt: echo.then_some(prompt),
                logprobs: logprobs.is_some(),
            };
            ("/api/generate", reply)
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
    // OpenAI's defaults, as Ollama's own /v1 sets them: without them the model's Modelfile
    // defaults (0.8 and 0.9 for most) would apply, and the same line would sample differently
    // here than on OpenAI or on Ollama's /v1.
    for key in ["temperature", "top_p"] {
        options.entry(key).or_insert_with(|| json!(1.0));
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

/// `reasoning_effort` (or the `reasoning: {effort}` object, which wins when both are given) as
/// Ollama's `think`, the way Ollama's own OpenAI layer maps it: `none` turns thinking off,
/// `minimal` is `low`, `xhigh` and `ultra` are `max`.
fn think(req: &Map<String, Value>) -> Result<Option<Value>, Invalid> {
    let (effort, param) = match present(req, "reasoning") {
        Some(reasoning) => (reasoning.get("effort").filter(|e| !e.is_null()), "reasoning"),
        None => (present(req, "reasoning_effort"), "reasoning_effort"),
    };
    let Some(effort) = effort else { return Ok(None) };
    let level = match effort.as_str() {
        Some("") => return Ok(None),
        Some("none") => return Ok(Some(Value::Bool(false))),
        Some("minimal") => "low",
        Some(level @ ("low" | "medium" | "high" | "max")) => level,
        Some("xhigh" | "ultra") => "max",
        _ => {
            return Err(Invalid::new(
                format!(
                    "Invalid reasoning effort {effort}: it must be \"none\", \"minimal\", \"low\", \
                     \"medium\", \"high\", \"xhigh\", \"ultra\" or \"max\"."
                ),
                Some(param),
            ));
        }
    };
    Ok(Some(Value::String(level.into())))
}

/// `logprobs: true` (and `top_logprobs`, 0 to 20) of a chat request, as Ollama takes them.
fn logprobs(req: &Map<String, Value>) -> Result<Option<u64>, Invalid> {
    match present(req, "logprobs") {
        None | Some(Value::Bool(false)) => {
            if present(req, "top_logprobs").is_some() {
                return Err(Invalid::new(
                    "'top_logprobs' needs 'logprobs': true.",
                    Some("top_logprobs"),
                ));
            }
            Ok(None)
        }
        Some(Value::Bool(true)) => match present(req, "top_logprobs") {
            None => Ok(Some(0)),
            Some(n) => match n.as_u64() {
                Some(n) if n <= 20 => Ok(Some(n)),
                _ => {
                    Err(Invalid::new("top_logprobs must be between 0 and 20", Some("top_logprobs")))
                }
            },
        },
        Some(_) => Err(Invalid::new("'logprobs' must be a boolean.", Some("logprobs"))),
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

/// The one prompt of a completions request. An empty one is refused: Ollama reads it as "load
/// the model" and answers 200 with no text.
fn prompt(prompt: Option<&Value>) -> Result<String, Invalid> {
    let empty = || {
        Invalid::new(
            "'prompt' must not be empty: Ollama reads an empty prompt as a request to load the \
             model, not to complete text.",
            Some("prompt"),
        )
    };
    match prompt {
        Some(Value::String(p)) if p.is_empty() => Err(empty()),
        Some(Value::String(p)) => Ok(p.clone()),
        Some(Value::Array(items)) => match items.as_slice() {
            [Value::String(p)] if p.is_empty() => Err(empty()),
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
        let several_choices =
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 3});
        let audio = json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}]});
        let no_model = json!({"messages": []});
        let hi = json!([{"role": "user", "content": "hi"}]);
        let bad_effort = json!({"model": "m", "messages": hi, "reasoning_effort": "extreme"});
        let bad_object = json!({"model": "m", "messages": hi, "reasoning": {"effort": 3}});
        let no_messages = json!({"model": "m", "messages": []});
        let bad_top = json!({"model": "m", "messages": hi, "logprobs": true, "top_logprobs": 21});
        for (body, param) in [
            (remote_image, "messages"),
            (several_choices, "n"),
            (audio, "messages"),
            (no_model, "model"),
            (bad_effort, "reasoning_effort"),
            (bad_object, "reasoning"),
            (no_messages, "messages"),
            (bad_top, "top_logprobs"),
        ] {
            let err = build_chat(body).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(param), "{}", err.message);
        }
    }

    #[test]
    fn nulls_mean_not_set_and_sampling_defaults_are_openais() {
        let r = build_chat(json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "temperature": null, "max_tokens": null, "stop": null, "response_format": null,
            "reasoning_effort": "none"}))
        .unwrap();
        assert_eq!(r.body["options"], json!({"temperature": 1.0, "top_p": 1.0}));
        assert!(r.body.get("format").is_none());
        assert_eq!(r.body["think"], false);
        let r = build_chat(json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "temperature": 0.2}))
        .unwrap();
        assert_eq!(r.body["options"], json!({"temperature": 0.2, "top_p": 1.0}));
    }

    #[test]
    fn every_openai_reasoning_effort_maps_as_ollamas_v1_maps_it() {
        let messages = json!([{"role": "user", "content": "x"}]);
        for (effort, think) in [
            ("none", json!(false)),
            ("minimal", json!("low")),
            ("low", json!("low")),
            ("medium", json!("medium")),
            ("high", json!("high")),
            ("xhigh", json!("max")),
            ("ultra", json!("max")),
            ("max", json!("max")),
        ] {
            let r =
                build_chat(json!({"model": "m", "messages": messages, "reasoning_effort": effort}))
                    .unwrap();
            assert_eq!(r.body["think"], think, "{effort}");
        }
        // The object form wins over the flat one, as in Ollama's /v1.
        let r = build_chat(json!({"model": "m", "messages": messages, "reasoning_effort": "high",
            "reasoning": {"effort": "minimal"}}))
        .unwrap();
        assert_eq!(r.body["think"], "low");
        let r = build_chat(json!({"model": "m", "messages": messages, "reasoning": {}})).unwrap();
        assert!(r.body.get("think").is_none());
    }

    #[test]
    fn logprobs_are_asked_of_ollama() {
        let messages = json!([{"role": "user", "content": "x"}]);
        let r = build_chat(json!({"model": "m", "messages": messages, "logprobs": true,
            "top_logprobs": 3}))
        .unwrap();
        assert_eq!(
            (r.body["logprobs"].clone(), r.body["top_logprobs"].clone()),
            (json!(true), json!(3))
        );
        let body =
            serde_json::value::to_raw_value(&json!({"model": "m", "prompt": "p", "logprobs": 2}))
                .unwrap();
        let r = build(Endpoint::Completions, &body, None, None).unwrap();
        assert_eq!(
            (r.body["logprobs"].clone(), r.body["top_logprobs"].clone()),
            (json!(true), json!(2))
        );
        assert_eq!(r.reply, ReplyKind::Generate { echo_prompt: None, logprobs: true });
    }

    #[test]
    fn an_empty_prompt_is_refused_rather_than_sent_as_a_load_request() {
        for prompt in [json!(""), json!([""])] {
            let body =
                serde_json::value::to_raw_value(&json!({"model": "m", "prompt": prompt})).unwrap();
            let err = build(Endpoint::Completions, &body, None, None).unwrap_err();
            assert_eq!(err.param.as_deref(), Some("prompt"));
        }
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
