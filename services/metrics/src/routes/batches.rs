//! `GET /v1/batches/{id}/metrics`: one batch's metrics, for its owner only.

use super::no_batch;
use crate::AppState;
use crate::report::batch;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use nightshift_shared::http::ApiError;
use nightshift_shared::http::CurrentOwner;
use nightshift_shared::http::extract::ApiPath;
use nightshift_shared::reports::BatchMetrics;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/batches/{batch_id}/metrics", get(metrics))
}

#[tracing::instrument(skip_all, fields(batch_id = %batch_id))]
async fn metrics(
    State(state): State<AppState>,
    CurrentOwner(owner): CurrentOwner,
    ApiPath(batch_id): ApiPath<String>,
) -> Result<Json<BatchMetrics>, ApiError> {
    batch::load(&state.store, &batch_id, &owner.0, state.retention.vram_window_ms())
        .await?
        .map(Json)
        .ok_or_else(|| no_batch(&batch_id))
}
