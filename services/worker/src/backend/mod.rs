//! The model server client: runs one OpenAI batch request body on Ollama (native API) or an
//! OpenAI-compatible server, with retries, timeouts and adaptive concurrency.
//!
//! # Layout
//! - [`Backend`] (here): warm-up and [`Backend::execute`], which never fails: every way a
//!   request can end is an [`Execution`] whose outcome goes to a result file.
//! - `config`: [`BackendConfig`], [`BackendKind`], [`BackendError`].
//! - `ollama`: OpenAI bodies to Ollama requests and Ollama answers back to OpenAI objects.
//! - `openai`: the pass-through for OpenAI-compatible servers.
//! - `retry`: one HTTP call under the failure policy.
//! - [`concurrency`]: the adaptive in-flight limit.
//! - `wire`: shapes and lenient readers both backends share.

pub mod concurrency;
mod config;
mod keep_alive;
mod ollama;
mod openai;
mod retry;
mod wire;

pub use concurrency::{Concurrency, ConcurrencyPermit};
pub use config::{BackendConfig, BackendError, BackendKind};

use bytes::Bytes;
use nightshift_shared::messages::{ResultOutcome, TokenUsage};
use nightshift_shared::openai::Endpoint;
use retry::{Answer, Call, Policy};
use secrecy::SecretString;
use serde_json::Value;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wire::{Invalid, Translated};

/// What a warm-up learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmUp {
    /// The load time the server reported, when it reports one.
    pub load_duration: Option<Duration>,
    /// Wall time of the warm-up, retries included; Ollama's load request reports no
    /// `load_duration`, so this is the best measure of the load there.
    pub elapsed: Duration,
}

/// Ollama's own timings of one request (zero where Ollama left a figure out).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OllamaTiming {
    pub load_duration: Duration,
    pub prompt_eval_duration: Duration,
    pub eval_duration: Duration,
    pub total_duration: Duration,
}

/// How one request ended.
#[derive(Debug)]
pub struct Execution {
    /// A 2xx goes to the output file; a non-2xx answer or an error to the error file.
    pub outcome: ResultOutcome,
    /// As the backend reported it; `None` figures were not reported.
    pub usage: Option<TokenUsage>,
    /// Set when the backend is Ollama and it answered.
    pub timing: Option<OllamaTiming>,
    /// HTTP attempts made; 0 when the request was refused before sending.
    pub attempts: u32,
    /// Wall time of the whole execution, backoff and waits for a slot included.
    pub latency: Duration,
    /// The model that answered, else the one requested.
    pub model: Option<String>,
}

/// A client for one model server; cheap to clone, clones share connections and the limit.
#[derive(Debug, Clone)]
pub struct Backend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    kind: BackendKind,
    base_url: String,
    api_key: Option<SecretString>,
    keep_alive: Option<Value>,
    max_tokens_cap: Option<u32>,
    policy: Policy,
    client: reqwest::Client,
    concurrency: Concurrency,
}

/// A request ready to send and how to read its answer.
struct Prepared {
    path: &'static str,
    body: Bytes,
    model: Option<String>,
    reply: Reply,
}

enum Reply {
    Ollama(ollama::ReplyKind),
    OpenAi,
}

impl Backend {
    /// Checks the configuration and builds the HTTP client; connects to nothing yet.
    pub fn new(config: BackendConfig) -> Result<Self, BackendError> {
        let mut base_url = config.base_url.trim().trim_end_matches('/');
        if config.kind == BackendKind::OpenAi {
            // We append the full `/v1/...` endpoint path ourselves.
            base_url = base_url.strip_suffix("/v1").unwrap_or(base_url).trim_end_matches('/');
        }
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(BackendError::Config(format!(
                "backend URL '{}' must start with http:// or https://",
                config.base_url
            )));
        }
        if config.max_attempts == 0 {
            return Err(BackendError::Config("max_attempts must be at least 1".into()));
        }
        if config.max_concurrency == 0 {
            return Err(BackendError::Config("max_concurrency must be at least 1".into()));
        }
        if config.request_timeout.is_zero() {
            return Err(BackendError::Config("request_timeout must be above zero".into()));
        }
        let keep_alive = keep_alive::parse(&config.keep_alive)?;
        let client = reqwest::Client::builder()
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(config.max_concurrency)
            .build()
            .map_err(BackendError::Client)?;
        Ok(Self {
            inner: Arc::new(Inner {
                kind: config.kind,
                base_url: base_url.to_owned(),
                api_key: config.api_key,
                keep_alive,
                max_tokens_cap: config.max_tokens_cap,
                policy: Policy {
                    max_attempts: config.max_attempts,
                    initial_backoff: config.initial_backoff,
                    max_backoff: config.max_backoff,
                    request_timeout: config.request_timeout,
                },
                client,
                concurrency: Concurrency::new(config.max_concurrency),
            }),
        })
    }

    /// Which API this backend speaks.
    pub fn kind(&self) -> BackendKind {
        self.inner.kind
    }

    /// Whether the configured `keep_alive` makes Ollama unload a model after every request.
    pub fn unloads_after_each_request(&self) -> bool {
        self.inner.kind == BackendKind::Ollama
            && self.inner.keep_alive.as_ref().is_some_and(keep_alive::unloads)
    }

    /// The in-flight limit every request of this backend goes through.
    pub fn concurrency(&self) -> &Concurrency {
        &self.inner.concurrency
    }

    /// Loads `model` so the first request does not pay for it: Ollama's load request
    /// (`/api/generate` with no prompt), or a one-token chat completion on an OpenAI server.
    /// An embedding model, which cannot generate, is loaded with a one-word embedding.
    pub async fn warm_up(&self, model: &str) -> Result<WarmUp, BackendError> {
        let started = Instant::now();
        let ways = match self.inner.kind {
            BackendKind::Ollama => {
                let mut load = serde_json::json!({"model": model, "stream": false});
                let mut embed =
                    serde_json::json!({"model": model, "input": "warm-up", "truncate": true});
                if let Some(ka) = &self.inner.keep_alive {
                    load["keep_alive"] = ka.clone();
                    embed["keep_alive"] = ka.clone();
                }
                vec![("/api/generate", load), ("/api/embed", embed)]
            }
            BackendKind::OpenAi => vec![
                (
                    "/v1/chat/completions",
                    serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hi"}],
                        "max_tokens": 1, "stream": false}),
                ),
                ("/v1/embeddings", serde_json::json!({"model": model, "input": "warm-up"})),
            ],
        };
        let fail = |code: &str, message: String| BackendError::WarmUp {
            model: model.to_owned(),
            code: code.to_owned(),
            message,
        };
        // Each refusal, in order: the first names the real problem unless the model merely
        // cannot generate, which the next way explains.
        let mut refusals: Vec<String> = Vec::new();
        let mut status = 0;
        for (path, body) in ways {
            let body =
                serde_json::to_vec(&body).map_err(|e| fail("backend_error", e.to_string()))?;
            let (result, _) = self.send(path, Bytes::from(body)).await;
            match result {
                Ok(answer) if answer.status.is_success() => {
                    let load_duration = match self.inner.kind {
                        BackendKind::Ollama => ollama::load_duration(&answer.body),
                        BackendKind::OpenAi => None,
                    };
                    tracing::info!(model, elapsed = ?started.elapsed(), ?load_duration, "model warmed up");
                    return Ok(WarmUp { load_duration, elapsed: started.elapsed() });
                }
                // A 4xx may only mean "not a generation model": try the next way to load it.
                Ok(answer) => {
                    status = answer.status.as_u16();
                    refusals.push(format!("{path}: {}", wire::error_text(&answer.body)));
                }
                Err(gave_up) => return Err(fail(gave_up.code, gave_up.message)),
            }
        }
        Err(fail(&format!("http_{status}"), refusals.join("; then ")))
    }

    /// Runs one batch request body with retries. Never fails: a request refused before
    /// sending ends as a 400 answer, a request the server never answered as an error.
    pub async fn execute(&self, endpoint: Endpoint, body: &RawValue) -> Execution {
        let started = Instant::now();
        let prepared = match self.prepare(endpoint, body) {
            Ok(prepared) => prepared,
            Err(invalid) => {
                return Execution {
                    outcome: ResultOutcome::Response { status_code: 400, body: invalid.body() },
                    usage: None,
                    timing: None,
                    attempts: 0,
                    latency: started.elapsed(),
                    model: requested_model(body),
                };
            }
        };
        let (result, attempts) = self.send(prepared.path, prepared.body).await;
        let requested = prepared.model;
        let (outcome, translated) = match result {
            Err(gave_up) => {
                (ResultOutcome::Error { code: gave_up.code.into(), message: gave_up.message }, None)
            }
            Ok(Answer { status, body }) if status.is_success() => {
                match self.translate(&prepared.reply, &body, requested.as_deref()) {
                    Ok(t) => {
                        let body = t.body;
                        let rest = (t.usage, t.timing, t.model);
                        (ResultOutcome::Response { status_code: status.as_u16(), body }, Some(rest))
                    }
                    Err(message) => {
                        tracing::warn!(endpoint = endpoint.as_str(), "{message}");
                        let code = "backend_bad_response".into();
                        (ResultOutcome::Error { code, message }, None)
                    }
                }
            }
            Ok(Answer { status, body }) => {
                let status_code = status.as_u16();
                let body = match prepared.reply {
                    Reply::Ollama(_) => ollama::error_reply_body(status_code, &body),
                    Reply::OpenAi => openai::error_reply_body(status_code, &body),
                };
                (ResultOutcome::Response { status_code, body }, None)
            }
        };
        let (usage, timing, answered_by) = translated.unwrap_or_default();
        Execution {
            outcome,
            usage,
            timing,
            attempts,
            latency: started.elapsed(),
            model: answered_by.or(requested),
        }
    }

    fn prepare(&self, endpoint: Endpoint, body: &RawValue) -> Result<Prepared, Invalid> {
        let inner = &self.inner;
        match inner.kind {
            BackendKind::Ollama => {
                let request =
                    ollama::build(endpoint, body, inner.keep_alive.as_ref(), inner.max_tokens_cap)?;
                let bytes = serde_json::to_vec(&request.body).map_err(|e| {
                    Invalid::new(format!("The request could not be encoded: {e}"), None)
                })?;
                Ok(Prepared {
                    path: request.path,
                    body: Bytes::from(bytes),
                    model: Some(request.model),
                    reply: Reply::Ollama(request.reply),
                })
            }
            BackendKind::OpenAi => {
                let (bytes, model) = openai::prepare_body(endpoint, body, inner.max_tokens_cap)?;
                Ok(Prepared {
                    path: endpoint.as_str(),
                    body: Bytes::from(bytes),
                    model,
                    reply: Reply::OpenAi,
                })
            }
        }
    }

    fn translate(
        &self,
        reply: &Reply,
        body: &[u8],
        model: Option<&str>,
    ) -> Result<Translated, String> {
        match reply {
            Reply::Ollama(kind) => ollama::translate(kind, body, model.unwrap_or_default()),
            Reply::OpenAi => openai::translate_reply(body),
        }
    }

    async fn send(&self, path: &str, body: Bytes) -> (Result<Answer, retry::GaveUp>, u32) {
        let inner = &self.inner;
        let url = format!("{}{path}", inner.base_url);
        let call = Call { url: &url, body, api_key: inner.api_key.as_ref() };
        retry::send(&inner.client, &inner.concurrency, &inner.policy, &call).await
    }
}

/// The `model` of a body, for results of requests that were never sent.
fn requested_model(body: &RawValue) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Model {
        model: Option<String>,
    }
    serde_json::from_str::<Model>(body.get()).ok()?.model
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn kind_parses_from_its_flag_names() {
        assert_eq!("ollama".parse::<BackendKind>().unwrap(), BackendKind::Ollama);
        assert_eq!("OpenAI".parse::<BackendKind>().unwrap(), BackendKind::OpenAi);
        assert!("vllm".parse::<BackendKind>().is_err());
        assert_eq!(BackendKind::from_str("openai", false).unwrap(), BackendKind::OpenAi);
        assert_eq!(BackendKind::OpenAi.to_string(), "openai");
    }

    #[test]
    fn new_refuses_a_config_that_cannot_work() {
        let bad = [
            BackendConfig { base_url: "127.0.0.1:11434".into(), ..Default::default() },
            BackendConfig { max_attempts: 0, ..Default::default() },
            BackendConfig { max_concurrency: 0, ..Default::default() },
            BackendConfig { request_timeout: Duration::ZERO, ..Default::default() },
        ];
        for config in bad {
            assert!(matches!(Backend::new(config), Err(BackendError::Config(_))));
        }
        let ok = Backend::new(BackendConfig::default()).unwrap();
        assert_eq!(ok.concurrency().current_limit(), 4);
    }
}
