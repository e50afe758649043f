//! Sending one HTTP request with the failure policy: per-attempt timeout, retries with
//! exponential backoff and full jitter, and overload signals fed to the concurrency limit.

use super::concurrency::Concurrency;
use bytes::Bytes;
use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

/// Largest answer read from a backend; embeddings of a big input list are the largest.
pub(crate) const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;

/// How hard to try.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub request_timeout: Duration,
}

/// One POST of a JSON body.
pub(crate) struct Call<'a> {
    pub url: &'a str,
    pub body: Bytes,
    pub api_key: Option<&'a SecretString>,
}

/// An answer that ends the retries: a success, or an error the server will repeat (4xx).
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

/// Why the retries stopped without an answer; `code` is the result's error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GaveUp {
    pub code: &'static str,
    pub message: String,
}

/// What went wrong on one attempt.
#[derive(Debug)]
enum Failure {
    Timeout(Duration),
    Connect(String),
    Transport(String),
    TooLarge,
    Status { status: StatusCode, retry_after: Option<Duration>, text: String },
}

/// Sends `call` until it gets an answer or the policy says stop; returns the attempts made.
/// A concurrency permit is held per attempt only, never while backing off.
pub(crate) async fn send(
    client: &reqwest::Client,
    concurrency: &Concurrency,
    policy: &Policy,
    call: &Call<'_>,
) -> (Result<Answer, GaveUp>, u32) {
    let max_attempts = policy.max_attempts.max(1);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = {
            let _permit = concurrency.acquire().await;
            once(client, policy.request_timeout, call).await
        };
        let failure = match result {
            Ok((answer, _)) if !retryable(answer.status) || unsupported(&answer.body) => {
                // The server took the request and answered it: it is not overloaded.
                concurrency.on_success();
                return (Ok(answer), attempt);
            }
            Ok((answer, retry_after)) => Failure::Status {
                status: answer.status,
                retry_after,
                text: super::wire::error_text(&answer.body),
            },
            Err(failure) => failure,
        };
        if matches!(failure, Failure::Status { status: StatusCode::SERVICE_UNAVAILABLE, .. }) {
            // Ollama's 503 means its queue is full: fewer requests at once, not just later.
            concurrency.on_overload();
        }
        if attempt >= max_attempts || matches!(failure, Failure::TooLarge) {
            let gave_up = gave_up(&failure, attempt, call.url);
            tracing::warn!(
                url = call.url,
                attempts = attempt,
                code = gave_up.code,
                "{}",
                gave_up.message
            );
            return (Err(gave_up), attempt);
        }
        let retry_after = match &failure {
            Failure::Status { retry_after, .. } => *retry_after,
            _ => None,
        };
        let delay = backoff(policy, attempt, retry_after);
        tracing::debug!(url = call.url, attempt, ?delay, failure = ?failure, "backend attempt failed; retrying");
        tokio::time::sleep(delay).await;
    }
}

/// 429 and 408 say "later"; a 5xx may be a crashed runner, a full queue or a restart. A 501
/// says the server does not do this at all.
fn retryable(status: StatusCode) -> bool {
    (status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED)
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

/// A 5xx that names a misconfiguration retrying cannot fix: llama.cpp answers a chat request
/// to an embedding model with 500 "the current context does not support logits computation",
/// and calls such errors `not_supported_error`.
fn unsupported(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]);
    text.contains("not_supported_error") || text.contains("does not support")
}

async fn once(
    client: &reqwest::Client,
    timeout: Duration,
    call: &Call<'_>,
) -> Result<(Answer, Option<Duration>), Failure> {
    let mut request =
        client.post(call.url).header(CONTENT_TYPE, "application/json").body(call.body.clone());
    if let Some(key) = call.api_key {
        request = request.bearer_auth(key.expose_secret());
    }
    // The timeout covers the whole answer, body included: a server that stalls mid-body
    // must not hold a slot forever.
    let exchange = async {
        let response = request.send().await?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = read_body(response).await?;
        Ok::<_, ReadError>((Answer { status, body }, retry_after))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Err(Failure::Timeout(timeout)),
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(ReadError::TooLarge)) => Err(Failure::TooLarge),
        // Before the timeout check: a connect timeout is an unreachable server.
        Ok(Err(ReadError::Http(e))) if e.is_connect() => Err(Failure::Connect(cause_chain(&e))),
        Ok(Err(ReadError::Http(e))) if e.is_timeout() => Err(Failure::Timeout(timeout)),
        Ok(Err(ReadError::Http(e))) => Err(Failure::Transport(cause_chain(&e))),
    }
}

enum ReadError {
    Http(reqwest::Error),
    TooLarge,
}

impl From<reqwest::Error> for ReadError {
    fn from(e: reqwest::Error) -> Self {
        Self::Http(e)
    }
}

async fn read_body(mut response: reqwest::Response) -> Result<Bytes, ReadError> {
    if response.content_length().is_some_and(|len| len > MAX_ANSWER_BYTES as u64) {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// reqwest's top-level message is generic ("error sending request"); the cause is below it.
fn cause_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Full jitter: a uniform wait in [0, min(max, initial * 2^(attempt-1))], which spreads the
/// retries of many workers hitting one server. A server's `Retry-After` wins, within max.
fn backoff(policy: &Policy, attempt: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(after) = retry_after {
        return after.min(policy.max_backoff);
    }
    let exp = policy.initial_backoff.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
    let ceiling = exp.min(policy.max_backoff);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::rng().random_range(0..=nanos))
}

fn gave_up(failure: &Failure, attempts: u32, url: &str) -> GaveUp {
    let tries = if attempts == 1 { "1 attempt".to_owned() } else { format!("{attempts} attempts") };
    match failure {
        Failure::Timeout(limit) => GaveUp {
            code: "backend_timeout",
            message: format!("The model server did not answer within {limit:?} ({tries})."),
        },
        Failure::Connect(cause) => GaveUp {
            code: "backend_unavailable",
            message: format!("Could not connect to the model server at {url}: {cause} ({tries})."),
        },
        Failure::Transport(cause) => GaveUp {
            code: "backend_unavailable",
            message: format!("The connection to the model server failed: {cause} ({tries})."),
        },
        Failure::TooLarge => GaveUp {
            code: "backend_bad_response",
            message: format!("The model server's answer is larger than {MAX_ANSWER_BYTES} bytes."),
        },
        Failure::Status { status, text, .. } => GaveUp {
            code: match *status {
                StatusCode::TOO_MANY_REQUESTS => "backend_rate_limited",
                StatusCode::REQUEST_TIMEOUT => "backend_timeout",
                _ => "backend_error",
            },
            message: format!("The model server answered {status}: {text} ({tries})."),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn backoff_stays_under_the_doubling_ceiling_and_the_max() {
        let p = policy();
        for _ in 0..200 {
            assert!(backoff(&p, 1, None) <= Duration::from_millis(100));
            assert!(backoff(&p, 3, None) <= Duration::from_millis(400));
            assert!(backoff(&p, 30, None) <= Duration::from_secs(1));
        }
    }

    #[test]
    fn retry_after_is_respected_but_bounded_by_max_backoff() {
        let p = policy();
        assert_eq!(backoff(&p, 1, Some(Duration::ZERO)), Duration::ZERO);
        assert_eq!(backoff(&p, 1, Some(Duration::from_secs(30))), Duration::from_secs(1));
    }

    #[test]
    fn only_server_errors_429_and_408_are_retried() {
        for s in [500, 502, 503, 504, 429, 408] {
            assert!(retryable(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [200, 400, 401, 404, 413, 422] {
            assert!(!retryable(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }
}
