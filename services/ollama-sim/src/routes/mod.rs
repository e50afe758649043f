//! The HTTP surface, one module per group of endpoints, merged into one router.

use axum::Router;
use axum::extract::DefaultBodyLimit;

use crate::state::SimState;

pub(crate) mod control;
pub(crate) mod embed;
pub(crate) mod info;
pub(crate) mod native;
pub(crate) mod openai;

/// Batch requests can carry long prompts; still bounded, like every input.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// The simulator's full router over `state`.
pub fn router(state: SimState) -> Router {
    Router::new()
        .merge(info::routes())
        .merge(native::routes())
        .merge(embed::routes())
        .merge(openai::routes())
        .merge(control::routes())
        // Gin's plain-text 404, which is what real Ollama answers for unknown paths.
        .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "404 page not found") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
