//! What guards every route of a Nightshift HTTP service, before and after its handler:
//! - a NUL character in the URL (`%00`) is a 400 before anything reads it: no id, cursor or
//!   parameter can hold one, and Postgres text cannot store it;
//! - any error response that is not already OpenAI's JSON (axum's plain-text rejections, the
//!   empty 405 of an unmatched method) is rewritten into `{"error": {...}}`, so OpenAI's SDK can
//!   show what went wrong.

use super::ApiError;
use axum::Router;
use axum::extract::Request;
use axum::http::header::{ALLOW, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

/// Most bytes of a plain-text error body carried into the JSON message.
const MAX_TEXT: usize = 2048;

/// Wraps a whole service router in the guards of this module.
pub fn guard(router: Router) -> Router {
    router.layer(middleware::from_fn(reject_nul)).layer(middleware::from_fn(openai_errors))
}

/// A 400 for a URL that holds `%00`, naming the query parameter when it is one.
pub async fn reject_nul(request: Request, next: Next) -> Response {
    let uri = request.uri();
    let nul = |s: &str| s.contains("%00");
    if nul(uri.path()) {
        return ApiError::invalid_value(
            "The URL path holds a NUL character (%00); no id can contain one.",
            "path",
        )
        .into_response();
    }
    if let Some(query) = uri.query().filter(|q| nul(q)) {
        let key = query
            .split('&')
            .find(|pair| nul(pair))
            .map(|pair| pair.split('=').next().unwrap_or_default())
            .filter(|key| !nul(key))
            .unwrap_or("query");
        return ApiError::invalid_value(
            format!("Invalid '{key}': it holds a NUL character (%00)."),
            key,
        )
        .into_response();
    }
    next.run(request).await
}

/// Rewrites an error response that is not JSON into OpenAI's shape, keeping its status.
pub async fn openai_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(response.headers()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_TEXT).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let text = if text.is_empty() {
        status.canonical_reason().unwrap_or("Error").to_owned()
    } else {
        text
    };
    let error = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::MethodNotAllowed(format!("Method {method} is not allowed on {path}."))
        }
        StatusCode::NOT_FOUND => {
            ApiError::NotFound(format!("Unknown request URL: {method} {path}."))
        }
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::BodyTooLarge(format!(
            "The request body is larger than {method} {path} accepts ({text})."
        )),
        StatusCode::UNAUTHORIZED => ApiError::Unauthorized { message: text, code: None },
        StatusCode::SERVICE_UNAVAILABLE => ApiError::Unavailable(text),
        s if s.is_server_error() => {
            ApiError::Internal(anyhow::anyhow!("{method} {path} answered {status}: {text}"))
        }
        _ => ApiError::invalid(format!("{text}."), None),
    };
    let mut out = error.into_response();
    *out.status_mut() = status;
    if let Some(allow) = parts.headers.get(ALLOW) {
        out.headers_mut().insert(ALLOW, allow.clone());
    }
    out
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}
