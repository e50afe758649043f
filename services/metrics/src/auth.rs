//! The API-key middleware of `/v1`: a batch's metrics belong to the key that created the batch.

use crate::error::ApiError;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
pub use nightshift_shared::auth::{Keys, Owner};

/// Rejects requests without a valid key, and records the owner for handlers.
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

/// The owner the middleware recorded, as a handler extractor.
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
