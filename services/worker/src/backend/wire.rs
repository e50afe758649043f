//! Pieces both backends share: a translated answer, a request refused before sending, the
//! OpenAI error body, and lenient readers for figures a server may format oddly.

use super::OllamaTiming;
use nightshift_shared::messages::TokenUsage;
use nightshift_shared::openai::{ApiError, ErrorResponse};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// A 2xx answer turned into what the output file holds.
#[derive(Debug)]
pub(crate) struct Translated {
    pub body: Box<RawValue>,
    pub usage: Option<TokenUsage>,
    pub timing: Option<OllamaTiming>,
    pub model: Option<String>,
}

/// A request this backend cannot run as written; it ends as a 400 without being sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub message: String,
    pub param: Option<String>,
}

impl Invalid {
    pub fn new(message: impl Into<String>, param: Option<&str>) -> Self {
        Self { message: message.into(), param: param.map(str::to_owned) }
    }

    pub fn body(&self) -> Box<RawValue> {
        error_body(&self.message, "invalid_request_error", self.param.clone(), None)
    }
}

/// OpenAI's `type` for an error answered with `status`.
pub(crate) fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    }
}

/// `{"error":{"message","type","param","code"}}`, the body of every error line.
pub(crate) fn error_body(
    message: &str,
    kind: &str,
    param: Option<String>,
    code: Option<String>,
) -> Box<RawValue> {
    let body = ErrorResponse {
        error: ApiError { message: message.to_owned(), kind: kind.to_owned(), param, code },
    };
    serde_json::value::to_raw_value(&body).unwrap_or_default()
}

/// At most `max` bytes of `text`, cut on a character boundary.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// The server's own words from an error answer: Ollama's `{"error":"..."}`, OpenAI's
/// `{"error":{"message":..}}`, vLLM's `{"message":..}`, or the text itself, bounded.
pub(crate) fn error_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
        let message = value
            .get("error")
            .and_then(|e| e.as_str().or_else(|| e.get("message").and_then(|m| m.as_str())))
            .or_else(|| value.get("message").and_then(|m| m.as_str()));
        if let Some(message) = message {
            return truncate(message, MAX_ERROR_TEXT);
        }
    }
    let text = text.trim();
    if text.is_empty() { "(no error text)".to_owned() } else { truncate(text, MAX_ERROR_TEXT) }
}

/// Longest server error text carried into a result, in bytes.
const MAX_ERROR_TEXT: usize = 2000;

/// Validates `text` as one JSON value and keeps it byte for byte, except line breaks: a body
/// goes on one line of a JSONL file. JSON strings cannot hold raw line breaks, so every one
/// outside them is insignificant whitespace and dropping it keeps the value the same.
pub(crate) fn single_line(text: &str) -> Result<Box<RawValue>, serde_json::Error> {
    if text.contains(['\n', '\r']) {
        RawValue::from_string(text.replace(['\n', '\r'], ""))
    } else {
        RawValue::from_string(text.to_owned())
    }
}

/// A count or duration as a `u64`, or `None` when absent, negative or not a number: a stats
/// field in an odd shape must not cost the answer it came with.
pub(crate) fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(value.and_then(|v| match v {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| {
            // Whole-number floats only; the cast saturates at u64::MAX.
            n.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u64)
        }),
        _ => None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Counts {
        #[serde(default, deserialize_with = "lenient_u64")]
        n: Option<u64>,
    }

    #[test]
    fn lenient_u64_reads_numbers_and_ignores_junk() {
        let n = |json: &str| serde_json::from_str::<Counts>(json).unwrap().n;
        assert_eq!(n(r#"{"n":12}"#), Some(12));
        assert_eq!(n(r#"{"n":12.0}"#), Some(12));
        assert_eq!(n(r#"{"n":-3}"#), None);
        assert_eq!(n(r#"{"n":"12"}"#), None);
        assert_eq!(n(r#"{"n":null}"#), None);
        assert_eq!(n(r#"{}"#), None);
    }

    #[test]
    fn single_line_drops_line_breaks_but_keeps_escaped_ones_in_strings() {
        let raw = single_line("{\r\n  \"a\": \"x\\ny\",\n  \"b\": [1,\n 2]\n}\n").unwrap();
        assert_eq!(raw.get(), "{  \"a\": \"x\\ny\",  \"b\": [1, 2]}");
        assert!(single_line("{\"a\":").is_err());
    }

    #[test]
    fn truncate_cuts_on_a_char_boundary() {
        assert_eq!(truncate("héllo", 2), "h...");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
