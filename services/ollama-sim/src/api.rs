//! Ollama's native wire types (`api/types.go`), with the field names, order and
//! `omitempty` rules of the real server.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::logprobs::Logprob;
use crate::models::ModelDetails;

/// Reads `null` as the type's default, as Go's decoder leaves a non-pointer field alone.
pub fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `role`, lower-cased on decoding like `api.Message.UnmarshalJSON` does.
fn lowercase<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(null_default::<D, String>(d)?.to_lowercase())
}

/// A string or a list of strings (`stop` on /v1).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

/// `api.ToolCallFunction` in a request: arguments are a JSON object (a string, as OpenAI
/// clients send, is refused like Ollama refuses it).
#[derive(Clone, Debug, Deserialize)]
pub struct ToolCallFunctionIn {
    #[serde(default, deserialize_with = "null_default")]
    #[expect(dead_code, reason = "type-checked like Ollama does, not used")]
    pub index: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    #[expect(dead_code, reason = "type-checked like Ollama does, not used")]
    pub arguments: Map<String, Value>,
}

/// `api.ToolCall` in a request (an assistant message's earlier calls).
#[derive(Clone, Debug, Deserialize)]
pub struct ToolCallIn {
    pub id: Option<String>,
    pub function: ToolCallFunctionIn,
}

/// `api.Message` as a request carries it.
#[derive(Clone, Debug, Deserialize)]
pub struct MessageIn {
    #[serde(default, deserialize_with = "lowercase")]
    pub role: String,
    #[serde(default, deserialize_with = "null_default")]
    pub content: String,
    #[expect(dead_code, reason = "type-checked like Ollama does, not used")]
    pub thinking: Option<String>,
    #[expect(dead_code, reason = "type-checked like Ollama does, not used")]
    pub images: Option<Vec<String>>,
    pub tool_calls: Option<Vec<ToolCallIn>>,
    pub tool_name: Option<String>,
    pub tool_call_id: Option<String>,
}

impl MessageIn {
    /// What the simulated model "reads" of a message: its text, plus the calls and ids of
    /// tool traffic, so a different tool exchange gets a different answer.
    pub fn transcript(&self) -> String {
        let mut text = self.content.clone();
        for call in self.tool_calls.iter().flatten() {
            text.push_str(&format!(
                "\n[call {} {}]",
                call.id.as_deref().unwrap_or(""),
                call.function.name
            ));
        }
        if let Some(id) = &self.tool_call_id {
            text.push_str(&format!(
                "\n[result of {id} {}]",
                self.tool_name.as_deref().unwrap_or("")
            ));
        }
        text
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ChatRequest {
    #[serde(default, deserialize_with = "null_default")]
    pub model: String,
    #[serde(default, deserialize_with = "null_default")]
    pub messages: Vec<MessageIn>,
    pub options: Option<Map<String, Value>>,
    pub format: Option<Value>,
    pub keep_alive: Option<Value>,
    pub stream: Option<bool>,
    #[serde(default, deserialize_with = "null_default")]
    pub tools: Vec<Value>,
    #[serde(default, deserialize_with = "null_default")]
    pub logprobs: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub top_logprobs: i64,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct GenerateRequest {
    #[serde(default, deserialize_with = "null_default")]
    pub model: String,
    #[serde(default, deserialize_with = "null_default")]
    pub prompt: String,
    pub suffix: Option<String>,
    pub system: Option<String>,
    pub options: Option<Map<String, Value>>,
    pub format: Option<Value>,
    pub keep_alive: Option<Value>,
    pub stream: Option<bool>,
    #[serde(default, deserialize_with = "null_default")]
    pub logprobs: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub top_logprobs: i64,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct EmbedRequest {
    #[serde(default, deserialize_with = "null_default")]
    pub model: String,
    /// Any JSON: the handler checks the type after decoding, as Ollama does.
    pub input: Option<Value>,
    pub truncate: Option<bool>,
    #[serde(default, deserialize_with = "null_default")]
    pub dimensions: i64,
    pub options: Option<Map<String, Value>>,
    pub keep_alive: Option<Value>,
}

/// The legacy `/api/embeddings` request: one prompt, one vector.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct EmbeddingsRequest {
    #[serde(default)]
    pub model: String,
    #[serde(default, deserialize_with = "null_default")]
    pub prompt: String,
    pub options: Option<Map<String, Value>>,
    pub keep_alive: Option<Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct PullRequest {
    #[serde(default)]
    pub model: String,
    /// Older clients send `name`.
    #[serde(default)]
    pub name: String,
    pub stream: Option<bool>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Timing and count fields of a finished generation, durations in nanoseconds. Go's
/// `omitempty` drops zeros; a real duration is never zero, so only the counts can go
/// missing (say `eval_count` with `num_predict: 0`).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Metrics {
    pub total_duration: u64,
    pub load_duration: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub prompt_eval_count: u64,
    pub prompt_eval_duration: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub eval_count: u64,
    pub eval_duration: u64,
}

/// `api.ToolCallFunction` in an answer; `index` is always written.
#[derive(Clone, Debug, Serialize)]
pub struct ToolCallFunction {
    pub index: usize,
    pub name: String,
    pub arguments: Map<String, Value>,
}

/// `api.ToolCall` in an answer, with the id Ollama generates (`call_` + 8 of [a-z0-9]).
#[derive(Clone, Debug, Serialize)]
pub struct ToolCall {
    pub id: String,
    pub function: ToolCallFunction,
}

/// `api.Message` in an answer: `content` is always written.
#[derive(Clone, Debug, Serialize)]
pub struct Message {
    pub role: String,
    pub content: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
}

/// `api.ChatResponse`, fields in Go's order.
#[derive(Clone, Debug, Serialize)]
pub struct ChatResponse {
    pub model: String,
    pub created_at: String,
    pub message: Message,
    pub done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done_reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logprobs: Vec<Logprob>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
}

/// `api.GenerateResponse`, fields in Go's order.
#[derive(Clone, Debug, Serialize)]
pub struct GenerateResponse {
    pub model: String,
    pub created_at: String,
    pub response: String,
    pub done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done_reason: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logprobs: Vec<Logprob>,
}

/// `api.EmbedResponse`: durations and count are `omitempty`.
#[derive(Clone, Debug, Serialize)]
pub struct EmbedResponse {
    pub model: String,
    pub embeddings: Vec<Vec<f32>>,
    #[serde(skip_serializing_if = "is_zero")]
    pub total_duration: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub load_duration: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub prompt_eval_count: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct EmbeddingsResponse {
    pub embedding: Vec<f64>,
}

/// An entry of `/api/tags`.
#[derive(Clone, Debug, Serialize)]
pub struct ListModel {
    pub name: String,
    pub model: String,
    pub modified_at: String,
    pub size: u64,
    pub digest: String,
    pub details: ModelDetails,
}

/// An entry of `/api/ps`.
#[derive(Clone, Debug, Serialize)]
pub struct RunningModel {
    pub name: String,
    pub model: String,
    pub size: u64,
    pub digest: String,
    pub details: ModelDetails,
    pub expires_at: String,
    pub size_vram: u64,
    pub context_length: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelList<T> {
    pub models: Vec<T>,
}
