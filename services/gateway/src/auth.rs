//! Optional API keys: each key owns the files and batches it created.

use crate::error::ApiError;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::Arc;

/// Who made a request: the hash of their API key, or empty when the API is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner(pub String);

/// The configured keys, kept only as hashes.
#[derive(Clone, Default)]
pub struct Keys(Arc<HashSet<String>>);

impl Keys {
    pub fn new(keys: &[SecretString]) -> Self {
        Self(Arc::new(
            keys.iter()
                .map(|k| k.expose_secret().trim())
                .filter(|k| !k.is_empty())
                .map(owner_of)
                .collect(),
        ))
    }

    pub fn is_open(&self) -> bool {
        self.0.is_empty()
    }

    fn authenticate(&self, header: Option<&str>) -> Result<Owner, ApiError> {
        if self.is_open() {
            return Ok(Owner(String::new()));
        }
        let Some(header) = header else {
            return Err(ApiError::Unauthorized {
                message: "You didn't provide an API key. You need to provide your API key in an \
                          Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
                    .into(),
                code: None,
            });
        };
        let key = header.strip_prefix("Bearer ").unwrap_or("").trim();
        let owner = owner_of(key);
        if key.is_empty() || !self.0.contains(&owner) {
            return Err(ApiError::Unauthorized {
                message: "Incorrect API key provided.".into(),
                code: Some("invalid_api_key".into()),
            });
        }
        Ok(Owner(owner))
    }
}

/// The stored owner of what a key creates: a hash, so keys never reach the database.
fn owner_of(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Middleware for `/v1`: rejects requests without a valid key, and records the owner for handlers.
pub async fn require_key(
    State(keys): State<Keys>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header =
        request.headers().get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let owner = keys.authenticate(header)?;
    request.extensions_mut().insert(owner);
    Ok(next.run(request).await)
}

impl<S: Send + Sync> FromRequestParts<S> for Owner {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Owner>()
            .cloned()
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("auth middleware not installed")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_api_has_one_anonymous_owner() {
        assert_eq!(Keys::new(&[]).authenticate(None).unwrap(), Owner(String::new()));
    }

    #[test]
    fn each_key_is_its_own_owner_and_others_are_refused() {
        let keys = Keys::new(&["k1".into(), "k2".into()]);
        let a = keys.authenticate(Some("Bearer k1")).unwrap();
        let b = keys.authenticate(Some("Bearer k2")).unwrap();
        assert_ne!(a, b);
        assert!(matches!(
            keys.authenticate(Some("Bearer nope")),
            Err(ApiError::Unauthorized { .. })
        ));
        assert!(matches!(keys.authenticate(None), Err(ApiError::Unauthorized { code: None, .. })));
    }
}
