//! Wire types of Ollama's OpenAI-compatible endpoints (/v1/...), as its openai package
//! defines them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::{OneOrMany, null_default};
use crate::logprobs::Logprob;

#[derive(Clone, Debug, Deserialize)]
pub struct ChatMessage {
    #[serde(default, deserialize_with = "null_default")]
    pub role: String,
    /// A string, an array of content parts, or null (tool calls only).
    #[serde(default)]
    pub content: Option<Value>,
    #[serde(default, deserialize_with = "null_default")]
    pub tool_calls: Vec<Value>,
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    /// The text of the message: a string as is, the text parts of an array joined, plus
    /// the ids of tool traffic (as the native transcript has them).
    pub fn text(&self) -> String {
        let mut text = match &self.content {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        };
        for call in &self.tool_calls {
            let id = call.get("id").and_then(Value::as_str).unwrap_or("");
            let name = call.pointer("/function/name").and_then(Value::as_str).unwrap_or("");
            text.push_str(&format!("\n[call {id} {name}]"));
        }
        if let Some(id) = &self.tool_call_id {
            text.push_str(&format!("\n[result of {id} ]"));
        }
        text
    }
}

/// The `reasoning` object of a chat request; its `effort` wins over `reasoning_effort`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Reasoning {
    #[serde(default, deserialize_with = "null_default")]
    pub effort: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Clone, Debug, Deserialize)]
pub struct JsonSchema {
    pub schema: Option<Value>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ResponseFormat {
    #[serde(rename = "type")]
    pub kind: String,
    pub json_schema: Option<JsonSchema>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ChatCompletionRequest {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub messages: Vec<ChatMessage>,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    /// The only token cap Ollama reads (`max_completion_tokens` is ignored, as there).
    pub max_tokens: Option<i64>,
    pub seed: Option<i64>,
    pub stop: Option<OneOrMany>,
    // Type-checked (a string is a 400) but unused: answers do not depend on sampling.
    #[expect(dead_code, reason = "validated, deliberately not used")]
    pub temperature: Option<f64>,
    #[expect(dead_code, reason = "validated, deliberately not used")]
    pub top_p: Option<f64>,
    pub response_format: Option<ResponseFormat>,
    #[serde(default, deserialize_with = "null_default")]
    pub tools: Vec<Value>,
    pub logprobs: Option<bool>,
    #[serde(default, deserialize_with = "null_default")]
    pub top_logprobs: i64,
    pub reasoning_effort: Option<String>,
    pub reasoning: Option<Reasoning>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct CompletionRequest {
    #[serde(default)]
    pub model: String,
    #[serde(default, deserialize_with = "null_default")]
    pub prompt: String,
    pub suffix: Option<String>,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    pub max_tokens: Option<i64>,
    pub seed: Option<i64>,
    pub stop: Option<OneOrMany>,
    #[expect(dead_code, reason = "validated, deliberately not used")]
    pub temperature: Option<f64>,
    #[expect(dead_code, reason = "validated, deliberately not used")]
    pub top_p: Option<f64>,
    /// Above 0: native logprobs with this many alternatives (never in the answer).
    pub logprobs: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct EmbeddingRequest {
    #[serde(default)]
    pub model: String,
    pub input: Option<Value>,
    #[serde(default, deserialize_with = "null_default")]
    pub dimensions: i64,
    pub encoding_format: Option<String>,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

/// A tool call as `ToToolCalls` writes it: arguments as a JSON string.
#[derive(Clone, Debug, Serialize)]
pub struct ToolCall {
    pub id: String,
    pub index: usize,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: ToolCallFunction,
}

#[derive(Clone, Debug, Serialize)]
pub struct ToolCallFunction {
    pub name: String,
    pub arguments: String,
}

impl From<&crate::api::ToolCall> for ToolCall {
    fn from(c: &crate::api::ToolCall) -> Self {
        Self {
            id: c.id.clone(),
            index: c.function.index,
            kind: "function",
            function: ToolCallFunction {
                name: c.function.name.clone(),
                arguments: Value::Object(c.function.arguments.clone()).to_string(),
            },
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Message {
    pub role: String,
    pub content: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
}

/// A streamed delta: the finish chunk's is `{}`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
}

/// `choices[].logprobs`, present only when the request asked for logprobs.
#[derive(Clone, Debug, Serialize)]
pub struct ChoiceLogprobs {
    pub content: Vec<Logprob>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Choice {
    pub index: u32,
    pub message: Message,
    pub finish_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<ChoiceLogprobs>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChatCompletion {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub system_fingerprint: &'static str,
    pub choices: Vec<Choice>,
    pub usage: Usage,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: Delta,
    pub finish_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<ChoiceLogprobs>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChatCompletionChunk {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub system_fingerprint: &'static str,
    pub choices: Vec<ChunkChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CompletionChoice {
    pub text: String,
    pub index: u32,
    pub finish_reason: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Completion {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub system_fingerprint: &'static str,
    pub choices: Vec<CompletionChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Embedding {
    pub object: &'static str,
    pub embedding: Vec<f32>,
    pub index: usize,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct EmbeddingUsage {
    pub prompt_tokens: u64,
    pub total_tokens: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct EmbeddingList {
    pub object: &'static str,
    pub data: Vec<Embedding>,
    pub model: String,
    pub usage: EmbeddingUsage,
}

#[derive(Clone, Debug, Serialize)]
pub struct Model {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelsList {
    pub object: &'static str,
    pub data: Vec<Model>,
}
