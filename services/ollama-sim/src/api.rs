//! Ollama's native wire types (docs/api.md), with the field names the real server uses.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::models::ModelDetails;

/// `options` of a request; fields the simulator does not model are accepted and ignored.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Options {
    pub num_predict: Option<i64>,
    // Sampling settings are parsed so a wrong type is a 400 like on Ollama, but the
    // answer ignores them: it must be the same however a client samples.
    #[expect(dead_code, reason = "validated, deliberately not used")]
    pub temperature: Option<f64>,
    #[expect(dead_code, reason = "validated, deliberately not used")]
    pub top_p: Option<f64>,
    pub seed: Option<i64>,
    pub stop: Option<OneOrMany>,
    pub num_ctx: Option<u64>,
}

/// A string or a list of strings (`stop`, embed `input`).
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

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Message {
    pub role: String,
    #[serde(default)]
    pub content: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ChatRequest {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub messages: Vec<Message>,
    #[serde(default)]
    pub options: Option<Options>,
    pub format: Option<Value>,
    pub keep_alive: Option<Value>,
    pub stream: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct GenerateRequest {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub prompt: String,
    pub suffix: Option<String>,
    pub system: Option<String>,
    #[serde(default)]
    pub images: Vec<String>,
    #[serde(default)]
    pub options: Option<Options>,
    pub format: Option<Value>,
    pub keep_alive: Option<Value>,
    pub stream: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct EmbedRequest {
    #[serde(default)]
    pub model: String,
    pub input: Option<OneOrMany>,
    pub truncate: Option<bool>,
    pub dimensions: Option<usize>,
    #[serde(default)]
    pub options: Option<Options>,
    pub keep_alive: Option<Value>,
}

/// The legacy `/api/embeddings` request: one prompt, one vector.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct EmbeddingsRequest {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub prompt: String,
    #[serde(default)]
    pub options: Option<Options>,
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

/// Timing and count fields every finished generation carries, durations in nanoseconds.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Metrics {
    pub total_duration: u64,
    pub load_duration: u64,
    pub prompt_eval_count: u64,
    pub prompt_eval_duration: u64,
    pub eval_count: u64,
    pub eval_duration: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChatResponse {
    pub model: String,
    pub created_at: String,
    pub message: Message,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done_reason: Option<String>,
    pub done: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
}

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
}

#[derive(Clone, Debug, Serialize)]
pub struct EmbedResponse {
    pub model: String,
    pub embeddings: Vec<Vec<f32>>,
    pub total_duration: u64,
    pub load_duration: u64,
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
