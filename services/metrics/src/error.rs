//! The metrics API's one error type, rendered in OpenAI's shape with the right status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use nightshift_shared::openai::{ApiError as WireError, ErrorResponse};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    Invalid { message: String, param: Option<String>, code: Option<String> },
    #[error("{message}")]
    Unauthorized { message: String, code: Option<String> },
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A bad query parameter.
    pub fn invalid_value(message: impl Into<String>, param: &str) -> Self {
        Self::Invalid {
            message: message.into(),
            param: Some(param.to_owned()),
            code: Some("invalid_value".into()),
        }
    }

    /// The answer for a batch the caller cannot see, whether it exists or not.
    pub fn no_batch(id: &str) -> Self {
        Self::NotFound(format!("No batch found with id '{id}'."))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Invalid { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(anyhow::Error::new(e).context("database"))
    }
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
        (status, Json(body)).into_response()
    }
}
