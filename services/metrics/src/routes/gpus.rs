//! `GET /v1/gpus`: the latest reading of every GPU any worker reported.

use crate::AppState;
use crate::store::read::GpuNow;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use nightshift_shared::http::ApiError;
use serde::Serialize;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/gpus", get(list))
}

#[derive(Serialize)]
struct GpuList {
    object: &'static str,
    data: Vec<GpuNow>,
}

async fn list(State(state): State<AppState>) -> Result<Json<impl Serialize>, ApiError> {
    Ok(Json(GpuList { object: "list", data: state.store.gpus_now().await? }))
}
