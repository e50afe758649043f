//! Worker configuration, from flags and environment.

use crate::backend::{BackendConfig, BackendKind};
use clap::Parser;
use nightshift_shared::config::NatsArgs;
use secrecy::SecretString;
use std::time::Duration;

#[derive(Debug, Clone, Parser)]
#[command(name = "nightshift-worker", version, about)]
pub struct Config {
    #[command(flatten)]
    pub nats: NatsArgs,

    /// This worker's name in results and telemetry; defaults to `<hostname>-<random>`.
    #[arg(long, env = "WORKER_ID")]
    pub worker_id: Option<String>,

    /// Which API the model server speaks.
    #[arg(long, env = "NIGHTSHIFT_BACKEND", value_enum, default_value_t = BackendKind::Ollama)]
    pub backend: BackendKind,

    /// Ollama's address (backend `ollama`).
    #[arg(long, env = "OLLAMA_URL", default_value = "http://127.0.0.1:11434")]
    pub ollama_url: String,

    /// An OpenAI-compatible server's root, e.g. vLLM's `http://gpu1:8000` (backend `openai`).
    #[arg(long, env = "OPENAI_BASE_URL")]
    pub openai_base_url: Option<String>,

    /// Bearer key for the model server, if it wants one.
    #[arg(long, env = "BACKEND_API_KEY", hide_env_values = true)]
    pub backend_api_key: Option<SecretString>,

    /// Ollama `keep_alive` sent with every request: `-1` keeps the model loaded between batches.
    #[arg(long, env = "OLLAMA_KEEP_ALIVE", default_value = "-1", allow_hyphen_values = true)]
    pub keep_alive: String,

    /// Requests in flight to the model server; size it to its parallel slots (OLLAMA_NUM_PARALLEL).
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 4)]
    pub concurrency: usize,

    /// Chunks this worker holds at once; 2 keeps the slots busy while one chunk drains.
    #[arg(long, env = "WORKER_PREFETCH_CHUNKS", default_value_t = 2)]
    pub prefetch_chunks: usize,

    /// Limit on one attempt of one request, in seconds.
    #[arg(long, env = "WORKER_REQUEST_TIMEOUT_SECS", default_value_t = 600)]
    pub request_timeout_secs: u64,

    /// Largest result one request may have, in bytes (an embeddings request of many inputs has
    /// the largest); a larger one ends as that request's error `result_too_large`.
    #[arg(long, env = "WORKER_MAX_RESULT_BYTES", default_value_t = 128 * 1024 * 1024)]
    pub max_result_bytes: usize,

    /// Most tokens one request may generate (requests asking more, or nothing, are capped).
    #[arg(long, env = "WORKER_MAX_TOKENS_CAP", default_value_t = 4096)]
    pub max_tokens_cap: u32,

    /// Tries per request, the first included.
    #[arg(long, env = "WORKER_MAX_ATTEMPTS", default_value_t = 5)]
    pub max_attempts: u32,

    /// First retry delay in milliseconds; doubles per retry, with jitter.
    #[arg(long, env = "WORKER_INITIAL_BACKOFF_MS", default_value_t = 200)]
    pub initial_backoff_ms: u64,

    /// Longest retry delay in milliseconds.
    #[arg(long, env = "WORKER_MAX_BACKOFF_MS", default_value_t = 10_000)]
    pub max_backoff_ms: u64,

    /// Models to load at start so the first batch does not pay the load (comma-separated).
    #[arg(long, env = "WORKER_MODELS", value_delimiter = ',')]
    pub models: Vec<String>,

    /// Seconds JetStream waits for a chunk's ack before redelivering it to another worker.
    /// Workers send progress acks every third of it while a chunk runs.
    #[arg(long, env = "WORKER_ACK_WAIT_SECS", default_value_t = 60)]
    pub ack_wait_secs: u64,

    /// A `load_duration` above this many milliseconds, after warm-up, is a model reload.
    #[arg(long, env = "WORKER_RELOAD_THRESHOLD_MS", default_value_t = 500)]
    pub reload_threshold_ms: u64,

    /// Seconds between GPU memory samples.
    #[arg(long, env = "WORKER_GPU_SAMPLE_SECS", default_value_t = 1.0)]
    pub gpu_sample_secs: f64,
}

impl Config {
    pub fn worker_id(&self) -> String {
        self.worker_id.clone().unwrap_or_else(|| {
            let host = crate::gpu::host_name();
            let suffix = uuid::Uuid::new_v4().simple().to_string();
            format!("{host}-{}", &suffix[..8])
        })
    }

    pub fn backend_url(&self) -> anyhow::Result<String> {
        match self.backend {
            BackendKind::Ollama => Ok(self.ollama_url.clone()),
            BackendKind::OpenAi => self.openai_base_url.clone().ok_or_else(|| {
                anyhow::anyhow!("backend 'openai' needs OPENAI_BASE_URL (e.g. http://gpu1:8000)")
            }),
        }
    }

    pub fn backend_config(&self) -> anyhow::Result<BackendConfig> {
        anyhow::ensure!(self.concurrency > 0, "WORKER_CONCURRENCY must be at least 1");
        anyhow::ensure!(self.prefetch_chunks > 0, "WORKER_PREFETCH_CHUNKS must be at least 1");
        Ok(BackendConfig {
            kind: self.backend,
            base_url: self.backend_url()?,
            api_key: self.backend_api_key.clone(),
            keep_alive: self.keep_alive.clone(),
            request_timeout: Duration::from_secs(self.request_timeout_secs.max(1)),
            max_tokens_cap: Some(self.max_tokens_cap).filter(|&n| n > 0),
            max_attempts: self.max_attempts.max(1),
            initial_backoff: Duration::from_millis(self.initial_backoff_ms),
            max_backoff: Duration::from_millis(self.max_backoff_ms.max(self.initial_backoff_ms)),
            max_concurrency: self.concurrency,
        })
    }
}
