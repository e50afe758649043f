//! What workers and the gateway measure, sent to the metrics service on the telemetry stream.
//!
//! Figures a source cannot know stay `None`: a missing VRAM or token figure is never reported as 0.

use crate::messages::TokenUsage;
use serde::{Deserialize, Serialize};

/// Unix time in milliseconds, the unit of every timestamp here.
pub type UnixMillis = i64;

/// One chunk's requests as a worker ran them, published once the chunk's results are durable.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkReport {
    pub batch_id: String,
    pub chunk_index: u32,
    pub worker_id: String,
    /// How many times JetStream had delivered this chunk when this worker took it (1 = first).
    pub delivery: u64,
    pub received_at: UnixMillis,
    pub finished_at: UnixMillis,
    pub requests: Vec<RequestReport>,
}

/// One request a worker ran (or skipped because its batch was cancelled or expired).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestReport {
    pub line: u32,
    pub model: Option<String>,
    /// Time from the chunk's arrival at the worker to the request's dispatch.
    pub queue_wait_ms: f64,
    /// Wall time of the backend call, all attempts included; 0 when no call was made.
    pub latency_ms: f64,
    pub attempts: u32,
    /// `None` on success, else the error code that lands in the error file
    /// (`backend_timeout`, `http_400`, `batch_cancelled`, ...).
    pub error: Option<String>,
    pub usage: Option<TokenUsage>,
    /// Ollama's own timings, when the backend is Ollama.
    pub ollama: Option<OllamaTimingMs>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OllamaTimingMs {
    pub load_ms: f64,
    pub prompt_eval_ms: f64,
    pub eval_ms: f64,
    pub total_ms: f64,
}

/// A model load seen after warm-up: the model had left memory and a request paid to reload it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelReload {
    pub worker_id: String,
    pub model: String,
    pub at: UnixMillis,
    pub load_ms: f64,
    pub batch_id: Option<String>,
}

/// Where a VRAM figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VramSource {
    /// NVML: the GPU's own memory counters.
    Nvml,
    /// Ollama's `/api/ps` `size_vram`: the models' footprint, not the whole GPU.
    OllamaPs,
}

/// Why a sample was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleTrigger {
    Periodic,
    ChunkStart,
    ChunkEnd,
}

/// The GPUs one worker sees, at one instant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GpuSample {
    pub worker_id: String,
    pub host: String,
    pub at: UnixMillis,
    pub source: VramSource,
    pub trigger: SampleTrigger,
    /// The batch the triggering chunk belongs to, for chunk-start and chunk-end samples.
    pub batch_id: Option<String>,
    pub gpus: Vec<GpuReading>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuReading {
    /// NVML's GPU UUID, or `ollama:<url>` when the figure comes from Ollama.
    pub uuid: String,
    pub name: String,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: Option<u64>,
    pub memory_free_bytes: Option<u64>,
    pub utilization_pct: Option<u32>,
    pub temperature_c: Option<u32>,
}

/// A batch's lifecycle step, published by the gateway as it happens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchEvent {
    pub batch_id: String,
    /// The owning API key's hash ([`crate::auth::owner_of`]); empty when the API is open.
    pub owner: String,
    /// The batch object's `status` after the step.
    pub status: crate::openai::BatchStatus,
    pub at: UnixMillis,
    pub total: u64,
    pub completed: u64,
    pub failed: u64,
    pub model: Option<String>,
    pub metadata: Option<std::collections::BTreeMap<String, String>>,
}
