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
    Router::new().merge(v1).merge(health::routes()).fallback(unknown_route).with_state(state)
}

async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!("Unknown request URL: {method} {}.", uri.path()))
}

/// `limit` and `after` of a list request, checked against the route's bounds.
#[derive(Debug, serde::Deserialize)]
pub struct Page {
    pub limit: Option<i64>,
    pub after: Option<String>,
}

impl Page {
    pub fn limit(&self, default: i64, max: i64) -> Result<i64, ApiError> {
        match self.limit {
            None => Ok(default),
            Some(n) if (1..=max).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::invalid_code(
                format!("Invalid 'limit': {n}. It must be between 1 and {max}."),
                Some("limit"),
                "invalid_value",
            )),
        }
    }
}
