//! Ollama's native embedding endpoints: /api/embed and the legacy /api/embeddings.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use serde_json::Value;

use crate::api::{EmbedRequest, EmbedResponse, EmbeddingsRequest, EmbeddingsResponse};
use crate::engine::{Job, Timings};
use crate::error::ApiError;
use crate::keep_alive::KeepAlive;
use crate::lookup::Handler;
use crate::options::Options;
use crate::plan::{self, parse_json};
use crate::state::SimState;
use crate::synth;

pub fn routes() -> Router<SimState> {
    Router::new().route("/api/embed", post(embed)).route("/api/embeddings", post(embeddings))
}

/// `input` as Ollama's EmbedHandler reads it: a string (empty means none), an array of
/// strings (empty strings kept and embedded), or nothing; any other shape is a 400.
pub(crate) fn inputs(input: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let invalid = || ApiError::BadRequest("invalid input type".into());
    match input {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => {
            items.iter().map(|i| i.as_str().map(str::to_owned).ok_or_else(invalid)).collect()
        }
        Some(_) => Err(invalid()),
    }
}

/// Vectors for `inputs`, after simulating the prompt-processing time. With no input,
/// Ollama only loads the model and answers no vectors.
pub(crate) async fn embed_inputs(
    state: &SimState,
    model: String,
    keep_alive: Option<KeepAlive>,
    inputs: &[String],
    dimensions: i64,
    num_ctx: Option<i64>,
    truncate: bool,
) -> Result<(Vec<Vec<f32>>, u64, Timings), ApiError> {
    if inputs.is_empty() {
        state.load_only(&model, keep_alive).await?;
        return Ok((Vec::new(), 0, Timings::default()));
    }
    let ctx = num_ctx.map(|c| c.max(1) as u64);
    let counts: Vec<u64> = inputs.iter().map(|i| synth::count_tokens(i).max(1)).collect();
    if let Some(ctx) = ctx
        && !truncate
        && counts.iter().any(|&c| c > ctx)
    {
        return Err(ApiError::BadRequest("the input length exceeds the context length".into()));
    }
    let prompt_tokens = counts.iter().map(|&c| ctx.map_or(c, |ctx| c.min(ctx))).sum();
    let job = Job { model: model.clone(), keep_alive, prompt_tokens, completion_tokens: 0 };
    let timings = state.run(&job).await?;
    let dim = state.config().embed_dim;
    let vectors = inputs
        .iter()
        .map(|i| synth::apply_dimensions(&synth::embedding(&model, i, dim), dimensions))
        .collect();
    Ok((vectors, prompt_tokens, timings))
}

async fn embed(State(state): State<SimState>, body: Bytes) -> Result<Response, ApiError> {
    let req: EmbedRequest = parse_json(&body)?;
    let keep_alive = plan::keep_alive(req.keep_alive.as_ref())?;
    // Ollama's order: an unparseable (here: empty) name, then the input's type, then
    // whether the model exists, so a bad input is a 400 even for an unknown model.
    if req.model.trim().is_empty() {
        return Err(ApiError::ModelNotFound(req.model));
    }
    let inputs = inputs(req.input.as_ref())?;
    let model = state.resolve_model(&req.model, Handler::Embed)?;
    let options = Options::from_map(req.options.as_ref())?;
    let (embeddings, prompt_eval_count, t) = embed_inputs(
        &state,
        model,
        keep_alive,
        &inputs,
        req.dimensions,
        options.num_ctx,
        req.truncate.unwrap_or(true),
    )
    .await?;
    Ok(Json(EmbedResponse {
        model: req.model,
        embeddings,
        total_duration: plan::nanos(t.total),
        load_duration: plan::nanos(t.load),
        prompt_eval_count,
    })
    .into_response())
}

async fn embeddings(State(state): State<SimState>, body: Bytes) -> Result<Response, ApiError> {
    let req: EmbeddingsRequest = parse_json(&body)?;
    let keep_alive = plan::keep_alive(req.keep_alive.as_ref())?;
    let model = state.resolve_model(&req.model, Handler::Embeddings)?;
    let options = Options::from_map(req.options.as_ref())?;
    let inputs: Vec<String> = Some(req.prompt).filter(|p| !p.is_empty()).into_iter().collect();
    let (mut vectors, _, _) =
        embed_inputs(&state, model, keep_alive, &inputs, 0, options.num_ctx, true).await?;
    let embedding = vectors.pop().unwrap_or_default().into_iter().map(f64::from).collect();
    Ok(Json(EmbeddingsResponse { embedding }).into_response())
}
