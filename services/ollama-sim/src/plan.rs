//! Turns a parsed request into the work to simulate and the answer it will get.

use axum::body::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::Metrics;
use crate::engine::{Job, Timings};
use crate::error::ApiError;
use crate::keep_alive::KeepAlive;
use crate::logprobs::{self, Logprob};
use crate::options::Options;
use crate::synth::{self, Completion, Fnv, Format};

/// A request's work and its (already decided) answer.
#[derive(Clone, Debug)]
pub struct Plan {
    pub job: Job,
    pub completion: Completion,
    /// The request hash everything above came from.
    pub seed: u64,
}

impl Plan {
    /// One logprob entry per generated token, `top` alternatives each.
    pub fn logprobs(&self, top: usize) -> Vec<Logprob> {
        logprobs::synthesize(self.seed, &self.completion.text, self.completion.eval_count, top)
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

/// Decides the completion for a generation request. Its text and length are a function
/// of model, turns, seed and format only, so a repeated request gets the same answer.
pub fn generation(
    model: String,
    keep_alive: Option<KeepAlive>,
    turns: &[(&str, &str)],
    options: &Options,
    format: &Format,
) -> Plan {
    let mut hash = Fnv::default().str(&model);
    for (role, content) in turns {
        hash = hash.str(role).str(content);
    }
    hash = hash.u64(options.seed.unwrap_or(0) as u64);
    if let Format::Schema(schema) = format {
        hash = hash.str(&schema.to_string());
    }
    let seed = hash.finish();
    let stop = options.stop.clone().unwrap_or_default();
    let completion = synth::complete(seed, options.num_predict, &stop, format);
    let prompt_tokens = prompt_tokens(turns.iter().copied(), options);
    Plan {
        job: Job { model, keep_alive, prompt_tokens, completion_tokens: completion.eval_count },
        completion,
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
