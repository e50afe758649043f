//! API keys, shared so every HTTP service accepts the same keys and agrees on who owns what.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::Arc;

/// Who made a request: the hash of their API key, or empty when the API is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner(pub String);

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "You didn't provide an API key. You need to provide your API key in an Authorization \
         header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
    )]
    Missing,
    #[error("Incorrect API key provided.")]
    Invalid,
}

impl AuthError {
    /// OpenAI's error code for this refusal.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Self::Missing => None,
            Self::Invalid => Some("invalid_api_key"),
        }
    }
}

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

    /// Checks an `Authorization` header value.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Owner, AuthError> {
        if self.is_open() {
            return Ok(Owner(String::new()));
        }
        let header = header.ok_or(AuthError::Missing)?;
        let key = header.strip_prefix("Bearer ").unwrap_or("").trim();
        let owner = owner_of(key);
        if key.is_empty() || !self.0.contains(&owner) {
            return Err(AuthError::Invalid);
        }
        Ok(Owner(owner))
    }
}

/// The stored owner of what a key creates: a hash, so keys never reach a database.
pub fn owner_of(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
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
        assert_eq!(keys.authenticate(Some("Bearer nope")), Err(AuthError::Invalid));
        assert_eq!(keys.authenticate(None), Err(AuthError::Missing));
    }
}
