//! Ollama's native API: OpenAI bodies in, OpenAI response objects out.
//!
//! The native API (rather than Ollama's `/v1` layer) is used because it reports what a batch
//! bills and tunes on: prompt and generated token counts, and load/eval timings.

mod messages;
mod reply;
mod request;

pub(crate) use reply::{load_duration, translate};
pub(crate) use request::build;

use crate::backend::wire::{error_body, error_type};
use serde_json::value::RawValue;

/// How to read the answer of the Ollama call a request became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReplyKind {
    Chat,
    /// `echo_prompt` is the prompt to put before the text when the request asked for `echo`;
    /// `logprobs` whether the request asked for them.
    Generate {
        echo_prompt: Option<String>,
        logprobs: bool,
    },
    Embed {
        base64: bool,
    },
}

/// The OpenAI error body for a final non-2xx Ollama answer (`{"error":"..."}`).
pub(crate) fn error_reply_body(status: u16, bytes: &[u8]) -> Box<RawValue> {
    let message = crate::backend::wire::error_text(bytes);
    // OpenAI names this case; Ollama says e.g. `model "x" not found, try pulling it first`.
    let code =
        (status == 404 && message.contains("not found")).then(|| "model_not_found".to_owned());
    error_body(&message, error_type(status), None, code)
}
