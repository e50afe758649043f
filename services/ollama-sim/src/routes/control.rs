//! Test controls that real Ollama lacks: /sim/state, /sim/config, /sim/evict.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Json;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::config::SimConfig;
use crate::error::ApiError;
use crate::plan::parse_json;
use crate::state::{SimSnapshot, SimState};

pub fn routes() -> Router<SimState> {
    Router::new()
        .route("/sim/state", get(sim_state))
        .route("/sim/config", get(get_config).post(patch_config))
        .route("/sim/evict", post(evict))
}

async fn sim_state(State(state): State<SimState>) -> Json<SimSnapshot> {
    Json(state.snapshot())
}

async fn get_config(State(state): State<SimState>) -> Json<SimConfig> {
    Json(state.config())
}

/// A JSON merge patch of the settings; answers the settings now in force.
async fn patch_config(
    State(state): State<SimState>,
    body: Bytes,
) -> Result<Json<SimConfig>, ApiError> {
    let patch: Value = parse_json(&body)?;
    let config = state.patch_config(&patch).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    tracing::info!(?patch, "simulator config patched");
    Ok(Json(config))
}

async fn evict(State(state): State<SimState>) -> Json<Value> {
    Json(json!({ "evicted": state.evict_all() }))
}
