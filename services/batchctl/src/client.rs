//! A typed client for the gateway's Files and Batches API, and for the metrics service's JSON.

use futures::{StreamExt, TryStreamExt};
use nightshift_shared::openai::{Batch, Endpoint, ErrorResponse, FileObject, List};
use reqwest::{RequestBuilder, Response, StatusCode, Url, multipart};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// How long a connection attempt may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one read may stall; uploads and downloads of large files may take far longer in all.
const READ_TIMEOUT: Duration = Duration::from_secs(300);
/// The one completion window the gateway (and OpenAI) accepts.
const COMPLETION_WINDOW: &str = "24h";
/// The most of a non-JSON error body quoted back to the user.
const MAX_QUOTED_BODY: usize = 300;

/// Which server a [`Client`] talks to; it decides what an unreachable server's message suggests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Gateway,
    Metrics,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::Metrics => "metrics service",
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Self::Gateway => {
                "is it running? start it with scripts/local-stack.sh up, or set --url (NIGHTSHIFT_URL)"
            }
            Self::Metrics => {
                "is it running? start it with scripts/local-stack.sh up, or set --metrics-url \
                 (NIGHTSHIFT_METRICS_URL)"
            }
        }
    }
}

/// What can go wrong talking to a server, split so callers can tell "down" from "said no".
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection could be made: the server is down or the URL is wrong.
    #[error("cannot reach the {} at {url}: {}", .service.name(), .service.hint())]
    Connect { service: Service, url: String },
    /// The server answered with an error; `message` is its own wording.
    #[error("{} {message}", .status.as_u16())]
    Api { status: StatusCode, message: String, code: Option<String> },
    /// The connection broke or timed out mid-request.
    #[error("request to {url} failed: {message}")]
    Transport { url: String, message: String },
    /// The server answered 2xx with a body that is not the expected JSON.
    #[error("unexpected response from {url}: {source}")]
    Decode {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid {} URL '{url}': {reason}", .service.name())]
    InvalidUrl { service: Service, url: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ClientError {
    /// Worth retrying: the server may be restarting or briefly overloaded.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Transport { .. } => true,
            Self::Api { status, .. } => status.is_server_error(),
            _ => false,
        }
    }

    /// What the user can do about it, where the server's message alone does not say.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::Api { status: StatusCode::UNAUTHORIZED, .. } => {
                Some("set NIGHTSHIFT_API_KEY (or pass --api-key) to a key the gateway accepts")
            }
            _ => None,
        }
    }

    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_owned(), source }
    }
}

/// One GPU's latest reading, as `GET /v1/gpus` of the metrics service lists it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct GpuReading {
    pub host: String,
    pub gpu: String,
    /// Unix milliseconds of the reading.
    pub at: i64,
    pub memory_used_bytes: i64,
}

/// Size of a file written by [`Client::file_content_to`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Downloaded {
    pub bytes: u64,
    pub lines: u64,
}

/// A client for one server: the gateway ([`Client::new`]) or the metrics service
/// ([`Client::metrics`]).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Scheme, host and port, without a trailing `/` or `/v1`.
    base: String,
    api_key: Option<SecretString>,
    service: Service,
}

impl Client {
    /// A gateway client. `base_url` may end in `/v1`, as OpenAI SDK base URLs do.
    pub fn new(base_url: &str, api_key: Option<SecretString>) -> Result<Self, ClientError> {
        Self::for_service(Service::Gateway, base_url, api_key)
    }

    /// A metrics-service client.
    pub fn metrics(base_url: &str, api_key: Option<SecretString>) -> Result<Self, ClientError> {
        Self::for_service(Service::Metrics, base_url, api_key)
    }

    fn for_service(
        service: Service,
        base_url: &str,
        api_key: Option<SecretString>,
    ) -> Result<Self, ClientError> {
        let invalid =
            |reason: String| ClientError::InvalidUrl { service, url: base_url.to_owned(), reason };
        let parsed = Url::parse(base_url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid("only http:// and https:// URLs are supported".into()));
        }
        let trimmed = base_url.trim_end_matches('/');
        let base = trimmed.strip_suffix("/v1").unwrap_or(trimmed).to_owned();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .user_agent(concat!("batchctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| invalid(error_chain(&e)))?;
        let api_key = api_key.filter(|k| !k.expose_secret().is_empty());
        Ok(Self { http, base, api_key, service })
    }

    /// The URL requests go to, without `/v1`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Uploads `path` with purpose `batch`, streamed from disk.
    pub async fn upload_file(&self, path: &Path) -> Result<FileObject, ClientError> {
        self.upload_file_with_progress(path, |_| {}).await
    }

    /// Uploads `path` with purpose `batch`, calling `on_sent` with each piece's size as it is read.
    pub async fn upload_file_with_progress(
        &self,
        path: &Path,
        on_sent: impl Fn(u64) + Send + Sync + 'static,
    ) -> Result<FileObject, ClientError> {
        let file = tokio::fs::File::open(path).await.map_err(|e| ClientError::io(path, e))?;
        let length = file.metadata().await.map_err(|e| ClientError::io(path, e))?.len();
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024)
            .inspect_ok(move |piece| on_sent(piece.len() as u64));
        let filename = path
            .file_name()
            .map_or_else(|| "input.jsonl".to_owned(), |n| n.to_string_lossy().into_owned());
        let part = multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), length)
            .file_name(filename);
        let form = multipart::Form::new().text("purpose", "batch").part("file", part);
        let url = self.url("/v1/files");
        self.json(self.http.post(&url).multipart(form), &url).await
    }

    /// Creates a batch over an uploaded file; empty `metadata` is left out.
    pub async fn create_batch(
        &self,
        input_file_id: &str,
        endpoint: Endpoint,
        metadata: &BTreeMap<String, String>,
    ) -> Result<Batch, ClientError> {
        let mut body = serde_json::json!({
            "input_file_id": input_file_id,
            "endpoint": endpoint,
            "completion_window": COMPLETION_WINDOW,
        });
        if !metadata.is_empty() {
            body["metadata"] = serde_json::json!(metadata);
        }
        let url = self.url("/v1/batches");
        self.json(self.http.post(&url).json(&body), &url).await
    }

    pub async fn get_batch(&self, id: &str) -> Result<Batch, ClientError> {
        let url = self.url(&format!("/v1/batches/{}", segment(id)));
        self.json(self.http.get(&url), &url).await
    }

    /// One page of batches, newest first; pass the previous page's `last_id` as `after`.
    pub async fn list_batches(
        &self,
        limit: Option<u32>,
        after: Option<&str>,
    ) -> Result<List<Batch>, ClientError> {
        let url = self.url("/v1/batches");
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        if let Some(after) = after {
            query.push(("after", after.to_owned()));
        }
        self.json(self.http.get(&url).query(&query), &url).await
    }

    pub async fn cancel_batch(&self, id: &str) -> Result<Batch, ClientError> {
        let url = self.url(&format!("/v1/batches/{}/cancel", segment(id)));
        self.json(self.http.post(&url), &url).await
    }

    /// Streams a file's content to `dest`, through `<dest>.part` so a broken download never
    /// looks complete.
    pub async fn file_content_to(
        &self,
        file_id: &str,
        dest: &Path,
    ) -> Result<Downloaded, ClientError> {
        let url = self.url(&format!("/v1/files/{}/content", segment(file_id)));
        let response = self.send(self.http.get(&url), &url).await?;
        let mut partial = dest.as_os_str().to_owned();
        partial.push(".part");
        let partial = PathBuf::from(partial);
        let result = self.stream_to(response, &partial, &url).await;
        match result {
            Ok(downloaded) => {
                tokio::fs::rename(&partial, dest).await.map_err(|e| ClientError::io(dest, e))?;
                Ok(downloaded)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&partial).await;
                Err(e)
            }
        }
    }

    async fn stream_to(
        &self,
        response: Response,
        path: &Path,
        url: &str,
    ) -> Result<Downloaded, ClientError> {
        let file = tokio::fs::File::create(path).await.map_err(|e| ClientError::io(path, e))?;
        let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
        let mut body = response.bytes_stream();
        let (mut bytes, mut newlines, mut last) = (0u64, 0u64, b'\n');
        while let Some(piece) = body.next().await {
            let piece = piece.map_err(|e| self.transport(url, &e))?;
            bytes += piece.len() as u64;
            newlines += piece.iter().filter(|&&b| b == b'\n').count() as u64;
            if let Some(&b) = piece.last() {
                last = b;
            }
            out.write_all(&piece).await.map_err(|e| ClientError::io(path, e))?;
        }
        out.flush().await.map_err(|e| ClientError::io(path, e))?;
        // A last line without its newline is still a line.
        let lines = newlines + u64::from(last != b'\n');
        Ok(Downloaded { bytes, lines })
    }

    /// `GET /v1/batches/{id}/metrics` of the metrics service, as untyped JSON: its shape is not
    /// settled yet.
    pub async fn batch_metrics(&self, id: &str) -> Result<serde_json::Value, ClientError> {
        let url = self.url(&format!("/v1/batches/{}/metrics", segment(id)));
        self.json(self.http.get(&url), &url).await
    }

    /// `GET /v1/gpus` of the metrics service: the latest reading of every GPU any worker reported.
    pub async fn gpus(&self) -> Result<Vec<GpuReading>, ClientError> {
        let url = self.url("/v1/gpus");
        #[derive(serde::Deserialize)]
        struct GpuList {
            data: Vec<GpuReading>,
        }
        let list: GpuList = self.json(self.http.get(&url), &url).await?;
        Ok(list.data)
    }

    /// `GET /v1/reports/multi-batch` of the metrics service over `batch_ids` in their order, with
    /// `thresholds` as query parameters; untyped, so every figure it has can be kept.
    pub async fn multi_batch_report(
        &self,
        batch_ids: &[String],
        thresholds: &[(&str, f64)],
    ) -> Result<serde_json::Value, ClientError> {
        let url = self.url("/v1/reports/multi-batch");
        let mut query: Vec<(&str, String)> =
            batch_ids.iter().map(|id| ("batch_id", id.clone())).collect();
        query.extend(thresholds.iter().map(|(k, v)| (*k, v.to_string())));
        self.json(self.http.get(&url).query(&query), &url).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn json<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        url: &str,
    ) -> Result<T, ClientError> {
        let response = self.send(request, url).await?;
        let body = response.bytes().await.map_err(|e| self.transport(url, &e))?;
        serde_json::from_slice(&body)
            .map_err(|source| ClientError::Decode { url: url.to_owned(), source })
    }

    /// Sends with the API key; any non-2xx answer becomes [`ClientError::Api`].
    async fn send(&self, request: RequestBuilder, url: &str) -> Result<Response, ClientError> {
        let request = match &self.api_key {
            Some(key) => request.bearer_auth(key.expose_secret()),
            None => request,
        };
        let response = request.send().await.map_err(|e| self.transport(url, &e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(api_error(response).await)
    }

    fn transport(&self, url: &str, e: &reqwest::Error) -> ClientError {
        if e.is_connect() {
            ClientError::Connect { service: self.service, url: self.base.clone() }
        } else {
            ClientError::Transport { url: url.to_owned(), message: error_chain(e) }
        }
    }
}

/// The server's own message from an OpenAI error body, or what little the body says otherwise.
async fn api_error(response: Response) -> ClientError {
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    match serde_json::from_slice::<ErrorResponse>(&body) {
        Ok(e) => ClientError::Api { status, message: e.error.message, code: e.error.code },
        Err(_) => {
            let text = String::from_utf8_lossy(&body);
            let text = text.trim();
            let message = if text.is_empty() {
                status.canonical_reason().unwrap_or("error").to_owned()
            } else {
                text.chars().take(MAX_QUOTED_BODY).collect()
            };
            ClientError::Api { status, message, code: None }
        }
    }
}

/// An error and its causes, `a: b: c`: reqwest's own message rarely says what failed.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// Percent-encodes an id for use as one path segment.
fn segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_accepts_a_trailing_v1_and_slash() {
        let client = Client::new("http://localhost:4080/v1/", None).unwrap();
        assert_eq!(client.base_url(), "http://localhost:4080");
        assert_eq!(client.url("/v1/files"), "http://localhost:4080/v1/files");
    }

    #[test]
    fn invalid_base_url_is_rejected_with_its_reason() {
        let e = Client::new("localhost:4080", None).unwrap_err();
        assert!(e.to_string().starts_with("invalid gateway URL 'localhost:4080'"), "{e}");
    }

    #[test]
    fn ids_are_escaped_as_one_path_segment() {
        assert_eq!(segment("batch_abc-1"), "batch_abc-1");
        assert_eq!(segment("a/b?c"), "a%2Fb%3Fc");
    }

    #[test]
    fn api_errors_read_as_status_and_server_message() {
        let e = ClientError::Api {
            status: StatusCode::NOT_FOUND,
            message: "No such Batch object: batch_x".into(),
            code: None,
        };
        assert_eq!(e.to_string(), "404 No such Batch object: batch_x");
        assert!(!e.is_transient());
    }
}
