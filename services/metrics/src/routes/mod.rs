//! The HTTP API: `/v1` (behind the API-key check), health and Prometheus metrics.

mod batches;
mod gpus;
mod health;
mod reports;

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
    let v1 = Router::new()
        .merge(batches::routes())
        .merge(reports::routes())
        .merge(gpus::routes())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            nightshift_shared::http::require_key,
        ));
    let router =
        Router::new().merge(v1).merge(health::routes()).fallback(unknown_route).with_state(state);
    nightshift_shared::http::edge::guard(router)
}

async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!("Unknown request URL: {method} {}.", uri.path()))
}

/// The answer for a batch the caller cannot see, whether it exists or not.
fn no_batch(id: &str) -> ApiError {
    ApiError::NotFound(format!("No batch found with id '{id}'."))
}
