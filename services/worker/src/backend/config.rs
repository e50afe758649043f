//! What a backend is configured with, and the errors of setting one up.

use secrecy::SecretString;
use std::time::Duration;

/// Which API the model server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// Ollama's native API (`/api/chat`, `/api/generate`, `/api/embed`).
    #[value(name = "ollama")]
    Ollama,
    /// Any OpenAI-compatible server (vLLM, llama.cpp, ...), at `<base_url>/v1/...`.
    #[value(name = "openai")]
    OpenAi,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ollama => "ollama",
            Self::OpenAi => "openai",
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for BackendKind {
    type Err = BackendError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ollama" => Ok(Self::Ollama),
            "openai" => Ok(Self::OpenAi),
            other => Err(BackendError::Config(format!(
                "unknown backend kind '{other}': use 'ollama' or 'openai'"
            ))),
        }
    }
}

/// How to reach and use the model server.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    pub kind: BackendKind,
    /// Server root, e.g. `http://127.0.0.1:11434`; a trailing `/` or `/v1` is ignored.
    pub base_url: String,
    /// Sent as `Authorization: Bearer` when set.
    pub api_key: Option<SecretString>,
    /// Ollama `keep_alive`: an integer is seconds (`-1`: stay loaded), else a duration (`5m`).
    pub keep_alive: String,
    /// Limit on one attempt, answer body included.
    pub request_timeout: Duration,
    /// Most tokens one request may generate: applied when a request asks for more or for no
    /// limit, so one runaway generation cannot hold a slot for long.
    pub max_tokens_cap: Option<u32>,
    /// Tries per request, the first included.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Requests in flight at once; size it to the server's parallel slots.
    pub max_concurrency: usize,
}

impl Default for BackendConfig {
    fn default() -> Self {
        Self {
            kind: BackendKind::Ollama,
            base_url: "http://127.0.0.1:11434".into(),
            api_key: None,
            keep_alive: "-1".into(),
            request_timeout: Duration::from_secs(600),
            max_tokens_cap: None,
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_concurrency: 4,
        }
    }
}

/// Errors of [`Backend::new`] and [`Backend::warm_up`]; requests themselves never fail.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("invalid backend configuration: {0}")]
    Config(String),
    #[error("could not build the HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("warming up model '{model}' failed ({code}): {message}")]
    WarmUp { model: String, code: String, message: String },
}
