//! OpenAI chat messages as Ollama chat messages.

use crate::backend::wire::Invalid;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// OpenAI messages as Ollama messages: content parts flattened to text plus `images`,
/// tool-call arguments from JSON text to objects, tool results named by their tool. Call ids go
/// along (`tool_calls[].id`, `tool_call_id`): model templates that render them need them.
pub(super) fn chat_messages(messages: &[Value]) -> Result<Vec<Value>, Invalid> {
    let invalid =
        |i: usize, what: &str| Invalid::new(format!("messages[{i}]: {what}"), Some("messages"));
    // Ollama names a tool result by the tool, OpenAI by the call id.
    let mut tool_names: HashMap<String, String> = HashMap::new();
    let mut out = Vec::with_capacity(messages.len());
    for (i, message) in messages.iter().enumerate() {
        let Some(message) = message.as_object() else {
            return Err(invalid(i, "must be an object."));
        };
        let role = match message.get("role").and_then(Value::as_str) {
            // Ollama knows system, user, assistant and tool; developer is OpenAI's new system.
            Some("developer") => "system",
            Some(role) => role,
            None => return Err(invalid(i, "missing 'role'.")),
        };
        let mut images = Vec::new();
        let content = match message.get("content") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => {
                let mut texts = Vec::new();
                for part in parts {
                    match part.get("type").and_then(Value::as_str) {
                        Some("text") => match part.get("text").and_then(Value::as_str) {
                            Some(text) => texts.push(text),
                            None => return Err(invalid(i, "a text part needs 'text'.")),
                        },
                        Some("image_url") => {
                            let url = part
                                .get("image_url")
                                .and_then(|u| u.get("url").or(Some(u)))
                                .and_then(Value::as_str)
                                .unwrap_or_default();
                            match base64_payload(url) {
                                Some(data) => images.push(Value::String(data.to_owned())),
                                None => {
                                    return Err(invalid(
                                        i,
                                        "images must be base64 data URLs (data:image/png;base64,...): \
                                         the Ollama backend does not fetch remote images.",
                                    ));
                                }
                            }
                        }
                        other => {
                            return Err(invalid(
                                i,
                                &format!(
                                    "content part type '{}' is not supported by the Ollama backend.",
                                    other.unwrap_or("?")
                                ),
                            ));
                        }
                    }
                }
                texts.join("\n")
            }
            Some(_) => {
                return Err(invalid(i, "'content' must be a string or an array of parts."));
            }
        };

        let mut converted = Map::new();
        converted.insert("role".into(), Value::String(role.into()));
        converted.insert("content".into(), Value::String(content));
        if !images.is_empty() {
            converted.insert("images".into(), Value::Array(images));
        }
        if let Some(Value::Array(calls)) = message.get("tool_calls") {
            let mut ollama_calls = Vec::with_capacity(calls.len());
            for call in calls {
                let name =
                    call.pointer("/function/name").and_then(Value::as_str).unwrap_or_default();
                let arguments = match call.pointer("/function/arguments") {
                    Some(Value::String(text)) => serde_json::from_str::<Value>(text)
                        .map_err(|_| invalid(i, "tool call 'arguments' must be JSON text."))?,
                    Some(args @ Value::Object(_)) => args.clone(),
                    _ => Value::Object(Map::new()),
                };
                let mut converted_call =
                    json!({"function": {"name": name, "arguments": arguments}});
                if let Some(id) = call.get("id").and_then(Value::as_str) {
                    tool_names.insert(id.to_owned(), name.to_owned());
                    converted_call["id"] = Value::String(id.to_owned());
                }
                ollama_calls.push(converted_call);
            }
            if !ollama_calls.is_empty() {
                converted.insert("tool_calls".into(), Value::Array(ollama_calls));
            }
        }
        if role == "tool" {
            let name =
                message.get("name").and_then(Value::as_str).map(str::to_owned).or_else(|| {
                    let id = message.get("tool_call_id").and_then(Value::as_str)?;
                    tool_names.get(id).cloned()
                });
            if let Some(name) = name {
                converted.insert("tool_name".into(), Value::String(name));
            }
            if let Some(id) = message.get("tool_call_id").and_then(Value::as_str) {
                converted.insert("tool_call_id".into(), Value::String(id.to_owned()));
            }
        }
        out.push(Value::Object(converted));
    }
    Ok(out)
}

/// The base64 data of a `data:<mime>;base64,<data>` URL.
fn base64_payload(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    (meta.ends_with(";base64") && !data.is_empty()).then_some(data)
}

#[cfg(test)]
mod tests {
    use super::chat_messages;
    use serde_json::json;

    #[test]
    fn tool_call_ids_reach_ollama_on_the_call_and_on_its_result() {
        let messages = [
            json!({"role": "user", "content": "Weather in Paris?"}),
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_abc123",
                "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}),
            json!({"role": "tool", "tool_call_id": "call_abc123", "content": "18C"}),
        ];
        let out = chat_messages(&messages).unwrap();
        assert_eq!(out[1]["tool_calls"][0]["id"], "call_abc123");
        assert_eq!(out[1]["tool_calls"][0]["function"]["arguments"], json!({"city": "Paris"}));
        assert_eq!(out[2]["tool_call_id"], "call_abc123");
        assert_eq!(out[2]["tool_name"], "get_weather");
    }
}
