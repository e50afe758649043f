//! What every Nightshift HTTP service answers the same way: OpenAI-shaped errors and the API-key
//! check of `/v1`.
//!
//! - [`ApiError`] (here): the error type of every handler, rendered in OpenAI's shape.
//! - [`extract`]: axum's extractors with their rejections turned into [`ApiError`]s that name the
//!   parameter.
//! - [`edge`]: what guards every route: a NUL in the URL, unmatched methods, and the last net
//!   that turns any plain-text error into OpenAI's shape.

pub mod edge;
pub mod extract;

use crate::auth::{Keys, Owner};
use crate::openai::{ApiError as WireError, ErrorResponse};
use axum::Json;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// An HTTP service's API error, rendered as `{"error": {"message","type","param","code"}}` with
/// the right status. A 5xx hides its cause from the client and logs the whole chain.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    Invalid { message: String, param: Option<String>, code: Option<String> },
    #[error("{message}")]
    Unauthorized { message: String, code: Option<String> },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    /// A request body (not an uploaded file) over the route's limit.
    #[error("{0}")]
    BodyTooLarge(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn invalid(message: impl Into<String>, param: Option<&str>) -> Self {
        Self::Invalid { message: message.into(), param: param.map(str::to_owned), code: None }
    }

    pub fn invalid_code(message: impl Into<String>, param: Option<&str>, code: &str) -> Self {
        Self::Invalid {
            message: message.into(),
            param: param.map(str::to_owned),
            code: Some(code.into()),
        }
    }

    /// A parameter with a value that is not allowed.
    pub fn invalid_value(message: impl Into<String>, param: &str) -> Self {
        Self::invalid_code(message, Some(param), "invalid_value")
    }

    pub fn missing(param: &str) -> Self {
        Self::invalid_code(
            format!("Missing required parameter: '{param}'."),
            Some(param),
            "missing_required_parameter",
        )
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Invalid { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge(_) | Self::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Seconds a client is told to wait before retrying a 503.
pub const RETRY_AFTER_SECS: u64 = 2;

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if is_unreachable(&e) {
            tracing::warn!(error = %e, "database unreachable");
            return Self::Unavailable(
                "The database is unreachable at the moment; retry shortly.".into(),
            );
        }
        Self::Internal(anyhow::Error::new(e).context("database"))
    }
}

/// Whether a database error means the server cannot be reached (a 503 worth retrying), not that
/// the statement is wrong.
pub fn is_unreachable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed
    ) || matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|c| {
        // 57P01-57P03: the server is shutting down or starting; 08xxx: connection failures.
        c.starts_with("57P") || c.starts_with("08")
    }))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (kind, param, code) = match &self {
            Self::Invalid { param, code, .. } => {
                ("invalid_request_error", param.clone(), code.clone())
            }
            Self::Unauthorized { code, .. } => ("invalid_request_error", None, code.clone()),
            Self::NotFound(_) => ("invalid_request_error", None, Some("not_found".into())),
            Self::MethodNotAllowed(_) => {
                ("invalid_request_error", None, Some("method_not_allowed".into()))
            }
            Self::Conflict(_) => ("invalid_request_error", None, Some("conflict".into())),
            Self::TooLarge(_) => ("invalid_request_error", None, Some("file_too_large".into())),
            Self::BodyTooLarge(_) => {
                ("invalid_request_error", None, Some("request_too_large".into()))
            }
            Self::Unavailable(_) => ("server_error", None, Some("unavailable".into())),
            Self::Internal(_) => ("server_error", None, None),
        };
        let message = match &self {
            Self::Internal(cause) => {
                tracing::error!(error = ?cause, "request failed");
                "The server had an error while processing your request.".to_owned()
            }
            other => other.to_string(),
        };
        let body = ErrorResponse { error: WireError { message, kind: kind.into(), param, code } };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, RETRY_AFTER_SECS.into());
        }
        response
    }
}

/// Middleware for `/v1`: rejects requests without a valid key, and records the owner.
pub async fn require_key(
    State(keys): State<Keys>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header =
        request.headers().get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let owner = keys.authenticate(header).map_err(|e| ApiError::Unauthorized {
        message: e.to_string(),
        code: e.code().map(str::to_owned),
    })?;
    request.extensions_mut().insert(owner);
    Ok(next.run(request).await)
}

/// The owner [`require_key`] recorded, as a handler extractor.
pub struct CurrentOwner(pub Owner);

impl<S: Send + Sync> FromRequestParts<S> for CurrentOwner {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Only a route outside `/v1` can lack it, and no such route asks for an owner.
        parts
            .extensions
            .get::<Owner>()
            .cloned()
            .map(CurrentOwner)
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("auth middleware not installed")))
    }
}

/// The `/readyz` answer: 200 when the database answered and the queue is usable, else 503, with
/// what each said, under the names of what is in use (`postgres` or `sqlite`, `nats` or `local`).
pub fn readiness(
    database: &crate::db::Db,
    ping: Result<(), sqlx::Error>,
    queue: &dyn crate::queue::Queue,
) -> (StatusCode, Json<serde_json::Value>) {
    let database_state = match ping {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("unreachable: {e}"),
    };
    let queue_state = match queue.health() {
        Ok(()) => "ok".to_owned(),
        Err(e) => e,
    };
    let status = if database_state == "ok" && queue_state == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let database_name = match database.backend() {
        crate::db::Backend::Postgres => "postgres",
        crate::db::Backend::Sqlite => "sqlite",
    };
    let mut body = serde_json::Map::new();
    body.insert(database_name.into(), database_state.into());
    body.insert(queue.kind().into(), queue_state.into());
    (status, Json(serde_json::Value::Object(body)))
}
