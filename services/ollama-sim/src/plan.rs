//! Turns a parsed request into the work to simulate and the answer it will get.

use axum::body::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::{Metrics, ToolCall};
use crate::engine::{Job, Timings};
use crate::error::ApiError;
use crate::keep_alive::KeepAlive;
use crate::logprobs::{self, Logprob};
use crate::options::Options;
use crate::synth::{self, Completion, Fnv, Format};
use crate::tools;

/// A request's work and its (already decided) answer.
#[derive(Clone, Debug)]
pub struct Plan {
    pub job: Job,
    /// The text answer; empty, with the tool calls' token count, when the model calls tools.
    pub completion: Completion,
    pub tool_calls: Vec<ToolCall>,
    /// The request hash everything above came from.
    pub seed: u64,
}

impl Plan {
    /// One logprob entry per generated token, `top` alternatives each.
    pub fn logprobs(&self, top: usize) -> Vec<Logprob> {
        let text = if self.tool_calls.is_empty() {
            self.completion.text.clone()
        } else {
            tools::raw_text(&self.tool_calls)
        };
        logprobs::synthesize(self.seed, &text, self.completion.eval_count, top)
    }
}

/// Parses a JSON body the way Ollama answers bad ones: 400 `{"error": ...}`.
pub fn parse_json<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest("missing request body".into()));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// The request's keep_alive (`None` when not given), or Ollama's 400 when it is not one.
pub fn keep_alive(value: Option<&Value>) -> Result<Option<KeepAlive>, ApiError> {
    KeepAlive::from_request(value).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// Prompt tokens of (role, content) turns, capped at `num_ctx` when given: Ollama
/// truncates a prompt that does not fit the context.
pub fn prompt_tokens<'a>(
    turns: impl IntoIterator<Item = (&'a str, &'a str)>,
    options: &Options,
) -> u64 {
    let n = turns.into_iter().map(|(_, content)| synth::count_tokens(content)).sum::<u64>().max(1);
    options.num_ctx.map_or(n, |ctx| n.min(ctx.max(1) as u64))
}

/// Decides the answer to a generation request. Its text, tool calls and length are a
/// function of model, turns, seed, format and offered tools only, so a repeated request
/// gets the same answer.
pub fn generation(
    model: String,
    keep_alive: Option<KeepAlive>,
    turns: &[(&str, &str)],
    options: &Options,
    format: &Format,
    offered_tools: &[Value],
) -> Plan {
    let mut hash = Fnv::default().str(&model);
    for (role, content) in turns {
        hash = hash.str(role).str(content);
    }
    hash = hash.u64(options.seed.unwrap_or(0) as u64);
    if let Format::Schema(schema) = format {
        hash = hash.str(&schema.to_string());
    }
    // Only a request with tools hashes them, so answers without tools stay as they were.
    for tool in offered_tools {
        hash = hash.str(&tool.to_string());
    }
    let seed = hash.finish();
    let prompt_tokens = prompt_tokens(turns.iter().copied(), options);
    let last_role = turns.last().map(|(role, _)| *role);
    let calls = tools::decide(seed, offered_tools, last_role);
    let call_tokens = synth::count_tokens(&tools::raw_text(&calls)).max(1);
    // A call cut short by num_predict would not parse: the model answers in text instead.
    let fits = options.num_predict.is_none_or(|cap| cap < 0 || cap as u64 >= call_tokens);
    let (completion, tool_calls) = if !calls.is_empty() && fits {
        let completion =
            Completion { text: String::new(), eval_count: call_tokens, done_reason: "stop" };
        (completion, calls)
    } else {
        let stop = options.stop.clone().unwrap_or_default();
        (synth::complete(seed, options.num_predict, &stop, format), Vec::new())
    };
    Plan {
        job: Job { model, keep_alive, prompt_tokens, completion_tokens: completion.eval_count },
        completion,
        tool_calls,
        seed,
    }
}

/// Nanoseconds, saturating: a report can never overflow.
pub fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The timing/count block of a finished generation.
pub fn metrics(t: &Timings, prompt_eval_count: u64, eval_count: u64) -> Metrics {
    Metrics {
        total_duration: nanos(t.total),
        load_duration: nanos(t.load),
        prompt_eval_count,
        prompt_eval_duration: nanos(t.prompt_eval),
        eval_count,
        eval_duration: nanos(t.eval),
    }
}
