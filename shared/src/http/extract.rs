//! axum's extractors with rejections in OpenAI's error shape: a malformed path, query string,
//! body or upload is a 4xx [`ApiError`] whose message says what was wrong, never axum's plain
//! text (which OpenAI's SDK cannot show).

use super::ApiError;
use axum::body::Bytes;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::{
    BytesRejection, FailedToDeserializePathParams, PathRejection, QueryRejection,
};
use axum::extract::{FromRequest, FromRequestParts, Multipart, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// [`Path`], rejecting in OpenAI's shape.
pub struct ApiPath<T>(pub T);

/// [`Query`], rejecting in OpenAI's shape.
pub struct ApiQuery<T>(pub T);

/// The whole body as bytes (bounded by the route's body limit), rejecting in OpenAI's shape.
pub struct ApiBody(pub Bytes);

/// [`Multipart`], rejecting in OpenAI's shape (not multipart, or no boundary).
pub struct ApiMultipart(pub Multipart);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => Err(path_error(&e)),
            Err(e) => {
                Err(ApiError::Internal(anyhow::anyhow!("path parameters: {}", e.body_text())))
            }
        }
    }
}

fn path_error(e: &FailedToDeserializePathParams) -> ApiError {
    use axum::extract::path::ErrorKind;
    match e.kind() {
        ErrorKind::InvalidUtf8InPathParam { key } => ApiError::invalid_value(
            format!("Invalid '{key}': the URL path is not valid UTF-8."),
            key,
        ),
        ErrorKind::ParseErrorAtKey { key, value, expected_type } => ApiError::invalid_value(
            format!("Invalid '{key}': '{value}' is not {expected_type}."),
            key,
        ),
        _ => ApiError::invalid(format!("Invalid URL path: {}.", e.body_text()), None),
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(ApiError::invalid(format!("Invalid query string: {}.", e.body_text()), None))
            }
            Err(e) => {
                Err(ApiError::invalid(format!("Invalid query string: {}.", e.body_text()), None))
            }
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for ApiBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(request, state).await.map(Self).map_err(|e| body_error(&e))
    }
}

fn body_error(e: &BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::BodyTooLarge("The request body is larger than this endpoint accepts.".into())
    } else {
        ApiError::invalid(format!("The request body could not be read: {}.", e.body_text()), None)
    }
}

impl<S: Send + Sync> FromRequest<S> for ApiMultipart {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Multipart::from_request(request, state).await.map(Self).map_err(|e| multipart_error(&e))
    }
}

fn multipart_error(e: &MultipartRejection) -> ApiError {
    ApiError::invalid(
        format!(
            "The upload must be multipart/form-data with a boundary, holding the fields 'file' \
             and 'purpose' ({}).",
            e.body_text()
        ),
        None,
    )
}
