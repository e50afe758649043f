//! A scripted model server for the backend tests: it records every request it gets and plays
//! back canned answers, so a test sees exactly what the worker sent and what it made of the
//! answer.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use nightshift_worker::backend::{Backend, BackendConfig, BackendKind};
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One canned answer.
#[derive(Clone, Debug)]
pub struct Canned {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
    pub headers: Vec<(&'static str, String)>,
}

impl Canned {
    pub fn json(status: u16, body: Value) -> Self {
        Self::text(status, &body.to_string())
    }

    pub fn text(status: u16, body: &str) -> Self {
        Self { status, body: body.to_owned(), delay: Duration::ZERO, headers: Vec::new() }
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
}

/// A request the fake server received.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub body: Value,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct FakeState {
    script: Mutex<VecDeque<Canned>>,
    received: Mutex<Vec<Received>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

pub struct FakeServer {
    pub url: String,
    state: Arc<FakeState>,
}

impl FakeServer {
    /// Serves `script` in order; the last answer repeats once the others are used up.
    pub async fn start(script: Vec<Canned>) -> Self {
        let state = Arc::new(FakeState { script: Mutex::new(script.into()), ..Default::default() });
        let app = Router::new().fallback(answer).with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, state }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// The one request received; fails the test if there were more or none.
    pub fn only_request(&self) -> Received {
        let received = self.received();
        assert_eq!(received.len(), 1, "expected exactly one request, got {received:#?}");
        received.into_iter().next().unwrap()
    }

    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }
}

async fn answer(
    State(state): State<Arc<FakeState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    state.received.lock().unwrap().push(Received {
        path: uri.path().to_owned(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        authorization: headers.get("authorization").map(|v| v.to_str().unwrap().to_owned()),
    });
    let canned = {
        let mut script = state.script.lock().unwrap();
        if script.len() > 1 {
            script.pop_front().unwrap()
        } else {
            script.front().cloned().unwrap()
        }
    };
    tokio::time::sleep(canned.delay).await;
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    let mut response = (StatusCode::from_u16(canned.status).unwrap(), canned.body).into_response();
    response.headers_mut().insert("content-type", "application/json".parse().unwrap());
    for (name, value) in canned.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

/// Test settings: few attempts and millisecond backoffs so failures end fast.
pub fn config(kind: BackendKind, url: &str) -> BackendConfig {
    BackendConfig {
        kind,
        base_url: url.to_owned(),
        api_key: None,
        keep_alive: "-1".into(),
        request_timeout: Duration::from_secs(5),
        max_tokens_cap: None,
        max_attempts: 3,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        max_concurrency: 4,
    }
}

pub fn ollama(url: &str) -> Backend {
    Backend::new(config(BackendKind::Ollama, url)).unwrap()
}

pub fn raw(body: Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(&body).unwrap()
}

pub fn json_of(raw: &RawValue) -> Value {
    serde_json::from_str(raw.get()).unwrap()
}

/// A finished Ollama chat answer, as `/api/chat` sends it with `stream: false`.
pub fn ollama_chat_reply(content: &str) -> Value {
    serde_json::json!({
        "model": "llama3.2",
        "created_at": "2024-12-06T00:46:58.265747Z",
        "message": {"role": "assistant", "content": content},
        "done_reason": "stop",
        "done": true,
        "total_duration": 2_254_970_291u64,
        "load_duration": 574_751_416u64,
        "prompt_eval_count": 34,
        "prompt_eval_duration": 1_502_000_000u64,
        "eval_count": 12,
        "eval_duration": 175_000_000u64
    })
}
