//! Ollama's OpenAI-compatible endpoints (`middleware/openai.go`): /v1/chat/completions,
//! /v1/completions, /v1/embeddings, /v1/models.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::Value;

use crate::clock::unix_secs;
use crate::error::{ApiError, OpenAiError};
use crate::golang::quote;
use crate::logprobs;
use crate::lookup::Handler;
use crate::openai::{
    ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Choice, ChoiceLogprobs,
    ChunkChoice, Completion, CompletionChoice, CompletionRequest, Delta, Embedding, EmbeddingList,
    EmbeddingRequest, EmbeddingUsage, Message, Model, ModelsList, ToolCall, Usage,
};
use crate::options::Options;
use crate::plan::{self, Plan, parse_json};
use crate::routes::embed::{embed_inputs, inputs};
use crate::routes::info::listed_models;
use crate::state::SimState;
use crate::synth::Format;

const FINGERPRINT: &str = "fp_ollama";

pub fn routes() -> Router<SimState> {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(list_models))
}

/// Server-sent events, ending with `data: [DONE]` as OpenAI streams do.
fn sse<T: Serialize>(events: &[T]) -> Response {
    let mut body = Vec::new();
    for event in events {
        body.extend_from_slice(b"data: ");
        if serde_json::to_writer(&mut body, event).is_ok() {
            body.extend_from_slice(b"\n\n");
        }
    }
    body.extend_from_slice(b"data: [DONE]\n\n");
    ([(header::CONTENT_TYPE, "text/event-stream")], Body::from(body)).into_response()
}

fn next_id(state: &SimState, prefix: &str) -> String {
    format!("{prefix}-{}", state.0.counters.ids.fetch_add(1, Ordering::SeqCst))
}

fn usage(prompt_tokens: u64, completion_tokens: u64) -> Usage {
    Usage { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens }
}

fn plan_usage(plan: &Plan) -> Usage {
    usage(plan.job.prompt_tokens, plan.completion.eval_count)
}

/// `reasoning_effort` (or `reasoning.effort`, which wins) as `openai.go` accepts it.
fn check_reasoning(req: &ChatCompletionRequest) -> Result<(), ApiError> {
    let effort = match (&req.reasoning, &req.reasoning_effort) {
        (Some(r), _) => r.effort.as_str(),
        (None, Some(e)) => e.as_str(),
        (None, None) => "",
    };
    match effort {
        "" | "none" | "minimal" | "low" | "medium" | "high" | "max" | "xhigh" | "ultra" => Ok(()),
        other => Err(ApiError::BadRequest(format!(
            "invalid reasoning value: {} (must be \"minimal\", \"low\", \"medium\", \"high\", \
             \"xhigh\", \"ultra\", \"max\", or \"none\")",
            quote(other)
        ))),
    }
}

/// Ollama's `finish_reason`: the native done_reason, but a "stop" that produced tool calls
/// is "tool_calls".
fn finish_reason(plan: &Plan) -> String {
    match plan.completion.done_reason {
        "stop" if !plan.tool_calls.is_empty() => "tool_calls".into(),
        reason => reason.into(),
    }
}

async fn chat_completions(
    State(state): State<SimState>,
    body: Bytes,
) -> Result<Response, OpenAiError> {
    let req: ChatCompletionRequest = parse_json(&body)?;
    // The middleware's checks come before the native handler's model lookup.
    if req.messages.is_empty() {
        return Err(ApiError::BadRequest("[] is too short - 'messages'".into()).into());
    }
    check_reasoning(&req)?;
    let top = logprobs::check_top(req.top_logprobs)?;
    let model = state.resolve_model(&req.model, Handler::Chat)?;
    let options = Options {
        num_predict: req.max_tokens,
        seed: req.seed,
        stop: req.stop.map(|s| s.into_vec()),
        num_ctx: None,
    };
    let format = match req.response_format {
        Some(f) if f.kind == "json_object" => Format::Json,
        Some(f) if f.kind == "json_schema" => {
            f.json_schema.and_then(|s| s.schema).map_or(Format::Json, Format::Schema)
        }
        _ => Format::Text,
    };
    let texts: Vec<(String, String)> =
        req.messages.iter().map(|m| (m.role.to_lowercase(), m.text())).collect();
    let turns: Vec<(&str, &str)> = texts.iter().map(|(r, c)| (r.as_str(), c.as_str())).collect();
    // The OpenAI request has no keep_alive: the model keeps its own.
    let plan = plan::generation(model, None, &turns, &options, &format, &req.tools);
    state.run(&plan.job).await?;

    let id = next_id(&state, "chatcmpl");
    let created = unix_secs(SystemTime::now());
    let finish = Some(finish_reason(&plan));
    let logprobs =
        (req.logprobs == Some(true)).then(|| ChoiceLogprobs { content: plan.logprobs(top) });
    let tool_calls: Vec<ToolCall> = plan.tool_calls.iter().map(ToolCall::from).collect();
    if !req.stream {
        let message =
            Message { role: "assistant".into(), content: plan.completion.text.clone(), tool_calls };
        return Ok(Json(ChatCompletion {
            id,
            object: "chat.completion",
            created,
            model: req.model,
            system_fingerprint: FINGERPRINT,
            choices: vec![Choice { index: 0, message, finish_reason: finish, logprobs }],
            usage: plan_usage(&plan),
        })
        .into_response());
    }
    // Every chunk keeps the first answer's `created`, as Ollama pins it.
    let chunk = |delta: Delta, finish_reason: Option<String>, logprobs| ChatCompletionChunk {
        id: id.clone(),
        object: "chat.completion.chunk",
        created,
        model: req.model.clone(),
        system_fingerprint: FINGERPRINT,
        choices: vec![ChunkChoice { index: 0, delta, finish_reason, logprobs }],
        usage: None,
    };
    let content = Delta {
        role: Some("assistant".into()),
        content: Some(plan.completion.text.clone()),
        tool_calls,
    };
    let mut events = vec![chunk(content, None, logprobs), chunk(Delta::default(), finish, None)];
    if req.stream_options.is_some_and(|o| o.include_usage) {
        let mut last = chunk(Delta::default(), None, None);
        last.choices.clear();
        last.usage = Some(plan_usage(&plan));
        events.push(last);
    }
    Ok(sse(&events))
}

async fn completions(State(state): State<SimState>, body: Bytes) -> Result<Response, OpenAiError> {
    let req: CompletionRequest = parse_json(&body)?;
    // `logprobs: N` becomes native top_logprobs N (never answered on this endpoint).
    if let Some(n) = req.logprobs.filter(|&n| n > 0) {
        logprobs::check_top(n)?;
    }
    let model = state.resolve_model(&req.model, Handler::Generate)?;
    let id = next_id(&state, "cmpl");
    let completion =
        |text: String, finish_reason: Option<String>, usage: Option<Usage>| Completion {
            id: id.clone(),
            object: "text_completion",
            created: unix_secs(SystemTime::now()),
            model: req.model.clone(),
            system_fingerprint: FINGERPRINT,
            choices: vec![CompletionChoice { text, index: 0, finish_reason }],
            usage,
        };
    let answer = |text: String, finish: String, used: Usage| {
        if !req.stream {
            return Json(completion(text, Some(finish), Some(used))).into_response();
        }
        let mut events = Vec::new();
        if !text.is_empty() {
            events.push(completion(text, None, None));
        }
        events.push(completion(String::new(), Some(finish), None));
        if req.stream_options.as_ref().is_some_and(|o| o.include_usage) {
            let mut last = completion(String::new(), None, Some(used));
            last.choices.clear();
            events.push(last);
        }
        sse(&events)
    };
    if req.prompt.is_empty() {
        // Ollama's middleware passes an empty prompt on; the generate handler only loads
        // the model and its done_reason "load" becomes the finish_reason.
        state.load_only(&model, None).await?;
        return Ok(answer(String::new(), "load".into(), usage(0, 0)));
    }
    let options = Options {
        num_predict: req.max_tokens,
        seed: req.seed,
        stop: req.stop.clone().map(|s| s.into_vec()),
        num_ctx: None,
    };
    let mut turns = vec![("user", req.prompt.as_str())];
    if let Some(suffix) = req.suffix.as_deref().filter(|s| !s.is_empty()) {
        turns.push(("suffix", suffix));
    }
    let plan = plan::generation(model, None, &turns, &options, &Format::Text, &[]);
    state.run(&plan.job).await?;
    Ok(answer(plan.completion.text.clone(), plan.completion.done_reason.into(), plan_usage(&plan)))
}

async fn embeddings(State(state): State<SimState>, body: Bytes) -> Result<Response, OpenAiError> {
    let req: EmbeddingRequest = parse_json(&body)?;
    match req.encoding_format.as_deref() {
        None => {}
        Some(f) if f.eq_ignore_ascii_case("float") => {}
        Some(f) if f.eq_ignore_ascii_case("base64") => {
            return Err(ApiError::BadRequest(
                "the simulator only supports encoding_format \"float\"".into(),
            )
            .into());
        }
        Some(f) => {
            return Err(ApiError::BadRequest(format!(
                "Invalid value for 'encoding_format' = {f}. Supported values: ['float', 'base64']."
            ))
            .into());
        }
    }
    // The middleware turns "" into [""] (so it is embedded) and refuses no input at all.
    let inputs = match req.input {
        Some(Value::String(s)) => vec![s],
        None | Some(Value::Null) => return Err(ApiError::BadRequest("invalid input".into()).into()),
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(ApiError::BadRequest("invalid input".into()).into());
        }
        Some(other) => inputs(Some(&other))?,
    };
    let model = state.resolve_model(&req.model, Handler::Embed)?;
    let (vectors, prompt_tokens, _) =
        embed_inputs(&state, model, None, &inputs, req.dimensions, None, true).await?;
    let data = vectors
        .into_iter()
        .enumerate()
        .map(|(index, embedding)| Embedding { object: "embedding", embedding, index })
        .collect();
    Ok(Json(EmbeddingList {
        object: "list",
        data,
        model: req.model,
        usage: EmbeddingUsage { prompt_tokens, total_tokens: prompt_tokens },
    })
    .into_response())
}

async fn list_models(State(state): State<SimState>) -> Json<ModelsList> {
    let created = unix_secs(state.0.started);
    let data = listed_models(&state)
        .into_iter()
        .map(|m| Model { id: m.name, object: "model", created, owned_by: "library".into() })
        .collect();
    Json(ModelsList { object: "list", data })
}
