//! The HTTP API: `/v1` (behind the API-key check), health and metrics.

mod batches;
mod files;
mod health;

use crate::AppState;
use axum::Router;
use axum::extract::FromRef;
use axum::http::{Method, Uri};
use axum::middleware;
use nightshift_shared::http::ApiError;

impl FromRef<AppState> for nightshift_shared::auth::Keys {
    fn from_ref(state: &AppState) -> Self {
        state.keys.clone()
    }
}

pub fn router(state: AppState) -> Router {
    let v1 = Router::new().merge(files::routes(&state)).merge(batches::routes()).route_layer(
        middleware::from_fn_with_state(state.clone(), nightshift_shared::http::require_key),
    );
    let router =
        Router::new().merge(v1).merge(health::routes()).fallback(unknown_route).with_state(state);
    nightshift_shared::http::edge::guard(router)
}

async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!("Unknown request URL: {method} {}.", uri.path()))
}

/// `limit` and `after` of a list request, checked against the route's bounds. `limit` is read
/// as text so that `limit=abc` gets a message naming it, not a deserializer's.
#[derive(Debug, serde::Deserialize)]
pub struct Page {
    pub limit: Option<String>,
    pub after: Option<String>,
}

impl Page {
    pub fn limit(&self, default: i64, max: i64) -> Result<i64, ApiError> {
        parse_limit(self.limit.as_deref(), default, max)
    }
}

/// A list's `limit`: absent means `default`; anything but an integer in `1..=max` is a 400.
pub fn parse_limit(limit: Option<&str>, default: i64, max: i64) -> Result<i64, ApiError> {
    match limit {
        None => Ok(default),
        Some(text) => match text.trim().parse::<i64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid_value(
                format!("Invalid 'limit': '{text}'. It must be an integer between 1 and {max}."),
                "limit",
            )),
        },
    }
}
