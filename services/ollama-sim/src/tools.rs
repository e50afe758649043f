//! Tool calls the simulated model makes. A chat that offers tools and whose last message is
//! not a tool's result gets one call to one of the tools (picked by the request hash), with
//! arguments that fit its parameter schema; after a tool result the model answers in text.
//! Ids are `call_` + 8 of [a-z0-9], as Ollama's `toolCallId` makes them, but from the hash.

use serde_json::{Map, Value};

use crate::api::{ToolCall, ToolCallFunction};
use crate::synth::{Fnv, splitmix, value_from_schema};

const ID_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// `call_` and 8 characters of [a-z0-9], a pure function of the request and call index.
pub fn call_id(seed: u64, index: usize) -> String {
    let mut h = Fnv::default().u64(seed).str("tool call").u64(index as u64).finish();
    let mut id = String::from("call_");
    for _ in 0..8 {
        id.push(char::from(ID_CHARS[(h % ID_CHARS.len() as u64) as usize]));
        h = splitmix(h);
    }
    id
}

/// The names and parameter schemas of the offered function tools.
fn functions(tools: &[Value]) -> Vec<(&str, Option<&Value>)> {
    tools
        .iter()
        .filter_map(|t| {
            let f = t.get("function")?;
            let name = f.get("name")?.as_str().filter(|n| !n.is_empty())?;
            Some((name, f.get("parameters")))
        })
        .collect()
}

/// The calls the model makes for this request (none when no tool is offered or the last
/// message is a tool's answer).
pub fn decide(seed: u64, tools: &[Value], last_role: Option<&str>) -> Vec<ToolCall> {
    let offered = functions(tools);
    if offered.is_empty() || last_role == Some("tool") {
        return Vec::new();
    }
    let (name, parameters) = offered[(splitmix(seed ^ 0x700c) % offered.len() as u64) as usize];
    let arguments = match parameters.map(|p| value_from_schema(p, seed)) {
        Some(Value::Object(args)) => args,
        _ => Map::new(),
    };
    vec![ToolCall {
        id: call_id(seed, 0),
        function: ToolCallFunction { index: 0, name: name.to_owned(), arguments },
    }]
}

/// The calls as the model "typed" them, for token counts and logprobs.
pub fn raw_text(calls: &[ToolCall]) -> String {
    calls
        .iter()
        .map(|c| {
            let args = Value::Object(c.function.arguments.clone());
            format!("{{\"name\":{},\"arguments\":{args}}}", Value::from(c.function.name.as_str()))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_look_like_ollamas_and_are_deterministic() {
        let id = call_id(42, 0);
        assert_eq!(id.len(), 13);
        assert!(id.starts_with("call_"));
        assert!(id[5..].bytes().all(|b| ID_CHARS.contains(&b)));
        assert_eq!(id, call_id(42, 0));
        assert_ne!(id, call_id(43, 0));
    }

    #[test]
    fn calls_a_tool_unless_the_last_message_is_a_tool_result() {
        let tools = [json!({"type": "function", "function": {"name": "lookup",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}})];
        let calls = decide(1, &tools, Some("user"));
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].function.name, "lookup");
        assert!(calls[0].function.arguments["q"].is_string());
        assert!(decide(1, &tools, Some("tool")).is_empty());
        assert!(decide(1, &[], Some("user")).is_empty());
    }
}
