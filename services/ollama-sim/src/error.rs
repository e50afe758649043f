//! Errors as Ollama renders them: `{"error": "..."}` on its native API, the OpenAI
//! shape on `/v1`, and a dropped connection for the drop fault.

use std::io;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Every way a simulated request can fail, with Ollama's wording.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// A model the sim does not have, on /api/chat and /api/generate (name as sent).
    #[error("model '{0}' not found")]
    ModelNotFound(String),
    /// The same on /api/embed, whose handler words it differently (Go's `%q`).
    #[error("model {} not found, try pulling it first", crate::golang::quote(.0))]
    ModelNotPulled(String),
    /// A wrong type in `options`: Ollama finds it while scheduling, so it is a 500.
    #[error("{0}")]
    InvalidOption(String),
    #[error("simulated backend error")]
    Injected,
    // Ollama's ErrMaxQueue text, double space included: clients match on it.
    #[error("server busy, please try again.  maximum pending requests exceeded")]
    Busy,
    #[error("server shutting down")]
    ShuttingDown,
    /// Not an HTTP answer at all: the connection is aborted.
    #[error("connection dropped")]
    DropConnection,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::ModelNotFound(_) | Self::ModelNotPulled(_) => StatusCode::NOT_FOUND,
            Self::Injected | Self::DropConnection | Self::InvalidOption(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Self::Busy | Self::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::DropConnection = self {
            return dropped_connection();
        }
        (self.status(), Json(json!({ "error": self.to_string() }))).into_response()
    }
}

/// The same error on Ollama's OpenAI-compatible endpoints, whose middleware rewraps it
/// as `{"error":{"message","type","param","code"}}`.
#[derive(Debug)]
pub struct OpenAiError(pub ApiError);

impl From<ApiError> for OpenAiError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        if let ApiError::DropConnection = self.0 {
            return dropped_connection();
        }
        let kind = match status {
            StatusCode::BAD_REQUEST => "invalid_request_error",
            StatusCode::NOT_FOUND => "not_found_error",
            _ => "api_error",
        };
        let body = json!({ "error": { "message": self.0.to_string(), "type": kind, "param": null, "code": null } });
        (status, Json(body)).into_response()
    }
}

/// A response whose body fails before its first byte. Hyper buffers the status line
/// with the first body chunk, so the error aborts the connection with nothing sent:
/// the client sees a transport error, not an HTTP status.
fn dropped_connection() -> Response {
    let failing = futures::stream::once(async {
        Err::<Bytes, io::Error>(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "simulated connection drop",
        ))
    });
    Body::from_stream(failing).into_response()
}
