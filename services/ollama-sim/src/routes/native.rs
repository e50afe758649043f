//! Ollama's native inference endpoints: /api/chat, /api/generate, /api/embed,
//! /api/embeddings and a no-op /api/pull.

use std::time::SystemTime;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use serde::Serialize;
use serde_json::json;

use crate::api::{
    ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, EmbeddingsRequest, EmbeddingsResponse,
    GenerateRequest, GenerateResponse, Message, PullRequest,
};
use crate::clock::rfc3339;
use crate::engine::{Job, Timings};
use crate::error::ApiError;
use crate::keep_alive::KeepAlive;
use crate::lookup::Handler;
use crate::plan::{self, parse_json};
use crate::state::SimState;
use crate::synth::{self, Format};

pub fn routes() -> Router<SimState> {
    Router::new()
        .route("/api/chat", post(chat))
        .route("/api/generate", post(generate))
        .route("/api/embed", post(embed))
        .route("/api/embeddings", post(embeddings))
        .route("/api/pull", post(pull))
}

/// One JSON object for `stream: false`, else NDJSON lines: a stream Ollama clients
/// read exactly like the real token-by-token one.
fn respond<T: Serialize>(stream: bool, mut lines: Vec<T>) -> Response {
    if !stream {
        return match lines.pop() {
            Some(last) => Json(last).into_response(),
            None => Json(json!({})).into_response(),
        };
    }
    let mut body = Vec::new();
    for line in &lines {
        if serde_json::to_writer(&mut body, line).is_ok() {
            body.push(b'\n');
        }
    }
    ([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from(body)).into_response()
}

/// Loads or unloads for a request with nothing to generate, as Ollama does; returns
/// the done_reason.
async fn load_or_unload(
    state: &SimState,
    model: &str,
    keep_alive: Option<KeepAlive>,
) -> Result<&'static str, ApiError> {
    if keep_alive == Some(KeepAlive::UnloadNow) {
        state.unload(model);
        Ok("unload")
    } else {
        state.load_only(model, keep_alive).await?;
        Ok("load")
    }
}

fn assistant(content: String) -> Message {
    Message { role: "assistant".into(), content }
}

async fn chat(State(state): State<SimState>, body: Bytes) -> Result<Response, ApiError> {
    let req: ChatRequest = parse_json(&body)?;
    let model = state.resolve_model(&req.model, Handler::Chat)?;
    let keep_alive = plan::keep_alive(req.keep_alive.as_ref())?;
    let stream = req.stream.unwrap_or(true);
    if req.messages.is_empty() {
        let reason = load_or_unload(&state, &model, keep_alive).await?;
        let done = ChatResponse {
            model: req.model,
            created_at: rfc3339(SystemTime::now()),
            message: assistant(String::new()),
            done_reason: Some(reason.into()),
            done: true,
            metrics: None,
        };
        return Ok(respond(stream, vec![done]));
    }
    let options = req.options.unwrap_or_default();
    let format = Format::from_request(req.format.as_ref());
    let turns: Vec<(&str, &str)> =
        req.messages.iter().map(|m| (m.role.as_str(), m.content.as_str())).collect();
    let plan = plan::generation(model, keep_alive, &turns, &options, &format);
    let timings = state.run(&plan.job).await?;
    let created_at = rfc3339(SystemTime::now());
    let chunk = ChatResponse {
        model: req.model.clone(),
        created_at: created_at.clone(),
        message: assistant(plan.completion.text.clone()),
        done_reason: None,
        done: false,
        metrics: None,
    };
    let last = ChatResponse {
        model: req.model,
        created_at,
        message: assistant(if stream { String::new() } else { plan.completion.text }),
        done_reason: Some(plan.completion.done_reason.into()),
        done: true,
        metrics: Some(plan::metrics(&timings, plan.job.prompt_tokens, plan.completion.eval_count)),
    };
    Ok(respond(stream, vec![chunk, last]))
}

async fn generate(State(state): State<SimState>, body: Bytes) -> Result<Response, ApiError> {
    let req: GenerateRequest = parse_json(&body)?;
    let model = state.resolve_model(&req.model, Handler::Generate)?;
    let keep_alive = plan::keep_alive(req.keep_alive.as_ref())?;
    let stream = req.stream.unwrap_or(true);
    let created_at = || rfc3339(SystemTime::now());
    if req.prompt.is_empty() && req.images.is_empty() {
        let reason = load_or_unload(&state, &model, keep_alive).await?;
        let done = GenerateResponse {
            model: req.model,
            created_at: created_at(),
            response: String::new(),
            done: true,
            done_reason: Some(reason.into()),
            metrics: None,
        };
        return Ok(respond(stream, vec![done]));
    }
    let options = req.options.unwrap_or_default();
    let format = Format::from_request(req.format.as_ref());
    let mut turns = Vec::new();
    if let Some(system) = req.system.as_deref().filter(|s| !s.is_empty()) {
        turns.push(("system", system));
    }
    turns.push(("user", req.prompt.as_str()));
    if let Some(suffix) = req.suffix.as_deref().filter(|s| !s.is_empty()) {
        turns.push(("suffix", suffix));
    }
    let plan = plan::generation(model, keep_alive, &turns, &options, &format);
    let timings = state.run(&plan.job).await?;
    let chunk = GenerateResponse {
        model: req.model.clone(),
        created_at: created_at(),
        response: plan.completion.text.clone(),
        done: false,
        done_reason: None,
        metrics: None,
    };
    let last = GenerateResponse {
        model: req.model,
        created_at: created_at(),
        response: if stream { String::new() } else { plan.completion.text },
        done: true,
        done_reason: Some(plan.completion.done_reason.into()),
        metrics: Some(plan::metrics(&timings, plan.job.prompt_tokens, plan.completion.eval_count)),
    };
    Ok(respond(stream, vec![chunk, last]))
}

/// Vectors for `inputs`, after simulating the prompt-processing time. With no input,
/// Ollama only loads the model and answers no vectors.
pub(crate) async fn embed_inputs(
    state: &SimState,
    model: String,
    keep_alive: Option<KeepAlive>,
    inputs: &[String],
    dimensions: Option<usize>,
    num_ctx: Option<u64>,
    truncate: bool,
) -> Result<(Vec<Vec<f32>>, u64, Timings), ApiError> {
    let dim = dimensions.unwrap_or(state.config().embed_dim);
    if !(1..=65_536).contains(&dim) {
        return Err(ApiError::BadRequest(format!("invalid dimensions {dim}")));
    }
    if inputs.is_empty() {
        let timings = state.load_only(&model, keep_alive).await?;
        return Ok((Vec::new(), 0, timings));
    }
    let counts: Vec<u64> = inputs.iter().map(|i| synth::count_tokens(i).max(1)).collect();
    if let Some(ctx) = num_ctx
        && !truncate
        && counts.iter().any(|&c| c > ctx)
    {
        return Err(ApiError::BadRequest("input exceeds maximum context length".into()));
    }
    let prompt_tokens = counts.iter().map(|&c| num_ctx.map_or(c, |ctx| c.min(ctx.max(1)))).sum();
    let job = Job { model: model.clone(), keep_alive, prompt_tokens, completion_tokens: 0 };
    let timings = state.run(&job).await?;
    let vectors = inputs.iter().map(|i| synth::embedding(&model, i, dim)).collect();
    Ok((vectors, prompt_tokens, timings))
}

async fn embed(State(state): State<SimState>, body: Bytes) -> Result<Response, ApiError> {
    let req: EmbedRequest = parse_json(&body)?;
    let model = state.resolve_model(&req.model, Handler::Embed)?;
    let keep_alive = plan::keep_alive(req.keep_alive.as_ref())?;
    // An empty string is "no input" to Ollama, not an input to embed.
    let inputs: Vec<String> = req
        .input
        .map(|i| i.into_vec())
        .unwrap_or_default()
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    let num_ctx = req.options.and_then(|o| o.num_ctx);
    let (embeddings, prompt_eval_count, t) = embed_inputs(
        &state,
        model,
        keep_alive,
        &inputs,
        req.dimensions,
        num_ctx,
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
    let model = state.resolve_model(&req.model, Handler::Embeddings)?;
    let keep_alive = plan::keep_alive(req.keep_alive.as_ref())?;
    let inputs: Vec<String> = Some(req.prompt).filter(|p| !p.is_empty()).into_iter().collect();
    let num_ctx = req.options.and_then(|o| o.num_ctx);
    let (mut vectors, _, _) =
        embed_inputs(&state, model, keep_alive, &inputs, None, num_ctx, true).await?;
    let embedding = vectors.pop().unwrap_or_default().into_iter().map(f64::from).collect();
    Ok(Json(EmbeddingsResponse { embedding }).into_response())
}

/// Pretends to pull: the model becomes one the sim "has", so clients that pull
/// before use work unchanged.
async fn pull(State(state): State<SimState>, body: Bytes) -> Result<Response, ApiError> {
    let req: PullRequest = parse_json(&body)?;
    let name = if req.model.is_empty() { req.name } else { req.model };
    if name.trim().is_empty() {
        return Err(ApiError::BadRequest("model is required".into()));
    }
    let mut config = state.config();
    if !config.models.iter().any(|m| crate::models::normalize(m) == crate::models::normalize(&name))
    {
        config.models.push(name);
        state.set_config(config).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    }
    let lines = vec![json!({"status": "pulling manifest"}), json!({"status": "success"})];
    Ok(respond(req.stream.unwrap_or(true), lines))
}
