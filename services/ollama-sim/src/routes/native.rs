//! Ollama's native generation endpoints, /api/chat and /api/generate, plus a no-op
//! /api/pull. Checks run in the real handlers' order: body, top_logprobs, model, the
//! keep_alive-0 unload, options, model load, the empty-input load reply, generation.

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
    ChatRequest, ChatResponse, GenerateRequest, GenerateResponse, Message, PullRequest,
};
use crate::clock::rfc3339;
use crate::error::ApiError;
use crate::keep_alive::KeepAlive;
use crate::logprobs;
use crate::lookup::Handler;
use crate::options::Options;
use crate::plan::{self, parse_json};
use crate::state::SimState;
use crate::synth::Format;

pub fn routes() -> Router<SimState> {
    Router::new()
        .route("/api/chat", post(chat))
        .route("/api/generate", post(generate))
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

/// What a request with nothing to generate did, as in Ollama: with keep_alive 0 the model
/// is unloaded before anything else ("unload"); otherwise the model is loaded ("load").
enum Idle {
    Unload,
    Load,
}

impl Idle {
    fn reason(&self) -> &'static str {
        match self {
            Self::Unload => "unload",
            Self::Load => "load",
        }
    }
}

fn assistant(content: String) -> Message {
    Message { role: "assistant".into(), content, tool_calls: Vec::new() }
}

async fn chat(State(state): State<SimState>, body: Bytes) -> Result<Response, ApiError> {
    state.record_chat_request(&body);
    let req: ChatRequest = parse_json(&body)?;
    let keep_alive = plan::keep_alive(req.keep_alive.as_ref())?;
    let top = logprobs::check_top(req.top_logprobs)?;
    let model = state.resolve_model(&req.model, Handler::Chat)?;
    let stream = req.stream.unwrap_or(true);
    if let Some(idle) =
        nothing_to_do(&state, &model, req.messages.is_empty(), keep_alive, &req.options).await?
    {
        // A single object even when streaming, like Ollama's c.JSON here; no metrics.
        return Ok(Json(ChatResponse {
            model: req.model,
            created_at: rfc3339(SystemTime::now()),
            message: assistant(String::new()),
            done: true,
            done_reason: Some(idle.reason().into()),
            logprobs: Vec::new(),
            metrics: None,
        })
        .into_response());
    }
    let options = Options::from_map(req.options.as_ref())?;
    let format = Format::from_request(req.format.as_ref());
    let transcripts: Vec<String> = req.messages.iter().map(|m| m.transcript()).collect();
    let turns: Vec<(&str, &str)> =
        req.messages.iter().zip(&transcripts).map(|(m, t)| (m.role.as_str(), t.as_str())).collect();
    let plan = plan::generation(model, keep_alive, &turns, &options, &format, &req.tools);
    let timings = state.run(&plan.job).await?;
    let created_at = rfc3339(SystemTime::now());
    let logprobs = if req.logprobs { plan.logprobs(top) } else { Vec::new() };
    let message = Message {
        role: "assistant".into(),
        content: plan.completion.text.clone(),
        tool_calls: plan.tool_calls.clone(),
    };
    let last = |message: Message, logprobs| ChatResponse {
        model: req.model.clone(),
        created_at: created_at.clone(),
        message,
        done: true,
        done_reason: Some(plan.completion.done_reason.into()),
        logprobs,
        metrics: Some(plan::metrics(&timings, plan.job.prompt_tokens, plan.completion.eval_count)),
    };
    if !stream {
        return Ok(Json(last(message, logprobs)).into_response());
    }
    let chunk = ChatResponse {
        model: req.model.clone(),
        created_at: created_at.clone(),
        message,
        done: false,
        done_reason: None,
        logprobs,
        metrics: None,
    };
    let done = last(assistant(String::new()), Vec::new());
    Ok(respond(true, vec![chunk, done]))
}

/// Handles a request with no messages or no prompt: unloads (keep_alive 0, before the
/// options are even read) or checks the options and loads the model. `None` when there
/// is something to generate.
async fn nothing_to_do(
    state: &SimState,
    model: &str,
    empty: bool,
    keep_alive: Option<KeepAlive>,
    options: &Option<serde_json::Map<String, serde_json::Value>>,
) -> Result<Option<Idle>, ApiError> {
    if !empty {
        return Ok(None);
    }
    if keep_alive == Some(KeepAlive::UnloadNow) {
        state.unload(model);
        return Ok(Some(Idle::Unload));
    }
    // A bad option fails the load (500) even though nothing would be generated.
    Options::from_map(options.as_ref())?;
    state.load_only(model, keep_alive).await?;
    Ok(Some(Idle::Load))
}

async fn generate(State(state): State<SimState>, body: Bytes) -> Result<Response, ApiError> {
    let req: GenerateRequest = parse_json(&body)?;
    let keep_alive = plan::keep_alive(req.keep_alive.as_ref())?;
    let top = logprobs::check_top(req.top_logprobs)?;
    let model = state.resolve_model(&req.model, Handler::Generate)?;
    let stream = req.stream.unwrap_or(true);
    if let Some(idle) =
        nothing_to_do(&state, &model, req.prompt.is_empty(), keep_alive, &req.options).await?
    {
        return Ok(Json(GenerateResponse {
            model: req.model,
            created_at: rfc3339(SystemTime::now()),
            response: String::new(),
            done: true,
            done_reason: Some(idle.reason().into()),
            metrics: None,
            logprobs: Vec::new(),
        })
        .into_response());
    }
    let options = Options::from_map(req.options.as_ref())?;
    let format = Format::from_request(req.format.as_ref());
    let mut turns = Vec::new();
    if let Some(system) = req.system.as_deref().filter(|s| !s.is_empty()) {
        turns.push(("system", system));
    }
    turns.push(("user", req.prompt.as_str()));
    if let Some(suffix) = req.suffix.as_deref().filter(|s| !s.is_empty()) {
        turns.push(("suffix", suffix));
    }
    let plan = plan::generation(model, keep_alive, &turns, &options, &format, &[]);
    let timings = state.run(&plan.job).await?;
    let created_at = rfc3339(SystemTime::now());
    let logprobs = if req.logprobs { plan.logprobs(top) } else { Vec::new() };
    let last = |response: String, logprobs| GenerateResponse {
        model: req.model.clone(),
        created_at: created_at.clone(),
        response,
        done: true,
        done_reason: Some(plan.completion.done_reason.into()),
        metrics: Some(plan::metrics(&timings, plan.job.prompt_tokens, plan.completion.eval_count)),
        logprobs,
    };
    if !stream {
        return Ok(Json(last(plan.completion.text.clone(), logprobs)).into_response());
    }
    let chunk = GenerateResponse {
        model: req.model.clone(),
        created_at: created_at.clone(),
        response: plan.completion.text.clone(),
        done: false,
        done_reason: None,
        metrics: None,
        logprobs,
    };
    Ok(respond(true, vec![chunk, last(String::new(), Vec::new())]))
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
