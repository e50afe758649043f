//! Probe and listing endpoints: `/`, /api/version, /api/tags, /api/ps.

use std::time::SystemTime;

use axum::Router;
use axum::extract::State;
use axum::response::Json;
use axum::routing::get;
use serde_json::{Value, json};

use crate::api::{ListModel, ModelList, RunningModel};
use crate::clock::{forever, rfc3339, unix_secs, wall_time};
use crate::keep_alive::KeepAlive;
use crate::models::{self, LoadedView};
use crate::state::SimState;

/// What `/api/version` reports; "-sim" marks that this is not a real server.
pub const VERSION: &str = "0.12.0-sim";

/// Context length `/api/ps` reports (Ollama's default num_ctx).
const CONTEXT_LENGTH: u64 = 4096;

pub fn routes() -> Router<SimState> {
    Router::new()
        .route("/", get(root))
        .route("/api/version", get(version))
        .route("/api/tags", get(tags))
        .route("/api/ps", get(ps))
}

async fn root() -> &'static str {
    "Ollama is running"
}

async fn version() -> Json<Value> {
    Json(json!({ "version": VERSION }))
}

/// Models the sim "has", each the size of its simulated weights.
pub(crate) fn listed_models(state: &SimState) -> Vec<ListModel> {
    let config = state.config();
    let modified_at = rfc3339(state.0.started);
    config
        .models
        .iter()
        .map(|name| {
            let name = models::normalize(name);
            ListModel {
                model: name.clone(),
                modified_at: modified_at.clone(),
                size: config.vram_model_mb * 1024 * 1024,
                digest: models::digest(&name),
                details: models::details(&name),
                name,
            }
        })
        .collect()
}

async fn tags(State(state): State<SimState>) -> Json<ModelList<ListModel>> {
    Json(ModelList { models: listed_models(&state) })
}

/// When a loaded model will unload, as a wall-clock time. While in use the clock has
/// not started, so like Ollama we show now + keep_alive.
fn expires_at(m: &LoadedView) -> SystemTime {
    match (m.expires_at, m.keep_alive) {
        (Some(at), _) => wall_time(at),
        (None, KeepAlive::Forever) => forever(),
        (None, KeepAlive::Idle(d)) => SystemTime::now().checked_add(d).unwrap_or_else(forever),
        (None, KeepAlive::UnloadNow) => SystemTime::now(),
    }
}

/// Loaded models, longest time left first, compared in whole seconds like Ollama's
/// sort (ties keep name order, where Ollama's map order would be random).
async fn ps(State(state): State<SimState>) -> Json<ModelList<RunningModel>> {
    let config = state.config();
    let loaded = state.models().view(&config);
    let mut timed: Vec<(SystemTime, &LoadedView)> =
        loaded.iter().map(|m| (expires_at(m), m)).collect();
    timed.sort_by_key(|(at, _)| std::cmp::Reverse(unix_secs(*at)));
    let models = timed
        .into_iter()
        .map(|(at, m)| RunningModel {
            name: m.name.clone(),
            model: m.name.clone(),
            size: m.vram_bytes,
            digest: models::digest(&m.name),
            details: models::details(&m.name),
            expires_at: rfc3339(at),
            size_vram: m.vram_bytes,
            context_length: CONTEXT_LENGTH,
        })
        .collect();
    Json(ModelList { models })
}
