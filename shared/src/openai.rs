//! The OpenAI Files and Batches objects, field for field as OpenAI's API returns them.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// Endpoints a batch may target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Endpoint {
    #[serde(rename = "/v1/chat/completions")]
    ChatCompletions,
    #[serde(rename = "/v1/completions")]
    Completions,
    #[serde(rename = "/v1/embeddings")]
    Embeddings,
}

impl Endpoint {
    pub const ALL: [Endpoint; 3] = [Self::ChatCompletions, Self::Completions, Self::Embeddings];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ChatCompletions => "/v1/chat/completions",
            Self::Completions => "/v1/completions",
            Self::Embeddings => "/v1/embeddings",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// The batch lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    Validating,
    Failed,
    InProgress,
    Finalizing,
    Completed,
    Expired,
    Cancelling,
    Cancelled,
}

impl BatchStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validating => "validating",
            Self::Failed => "failed",
            Self::InProgress => "in_progress",
            Self::Finalizing => "finalizing",
            Self::Completed => "completed",
            Self::Expired => "expired",
            Self::Cancelling => "cancelling",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Validating,
            Self::Failed,
            Self::InProgress,
            Self::Finalizing,
            Self::Completed,
            Self::Expired,
            Self::Cancelling,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// A terminal batch never changes again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Failed | Self::Completed | Self::Expired | Self::Cancelled)
    }
}

/// A status as stored in a database's text column.
impl TryFrom<String> for BatchStatus {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s).ok_or_else(|| format!("unknown batch status {s:?}"))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounts {
    pub total: u64,
    pub completed: u64,
    pub failed: u64,
}

/// One entry of a batch's `errors.data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchError {
    pub code: String,
    pub message: String,
    pub param: Option<String>,
    /// 1-based line of the input file, where the error belongs to a line.
    pub line: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchErrors {
    pub object: String,
    pub data: Vec<BatchError>,
}

impl BatchErrors {
    pub fn new(data: Vec<BatchError>) -> Self {
        Self { object: "list".into(), data }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputTokensDetails {
    pub cached_tokens: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputTokensDetails {
    pub reasoning_tokens: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchUsage {
    pub input_tokens: u64,
    pub input_tokens_details: InputTokensDetails,
    pub output_tokens: u64,
    pub output_tokens_details: OutputTokensDetails,
    pub total_tokens: u64,
}

/// The batch object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub id: String,
    pub object: String,
    pub endpoint: String,
    pub model: Option<String>,
    pub errors: Option<BatchErrors>,
    pub input_file_id: String,
    pub completion_window: String,
    pub status: BatchStatus,
    pub output_file_id: Option<String>,
    pub error_file_id: Option<String>,
    pub created_at: i64,
    pub in_progress_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub finalizing_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub expired_at: Option<i64>,
    pub cancelling_at: Option<i64>,
    pub cancelled_at: Option<i64>,
    pub request_counts: RequestCounts,
    pub usage: BatchUsage,
    pub metadata: Option<BTreeMap<String, String>>,
}

/// The file object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileObject {
    pub id: String,
    pub object: String,
    pub bytes: u64,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub filename: String,
    pub purpose: String,
    /// Deprecated by OpenAI but still returned; always `processed` once stored.
    pub status: String,
    pub status_details: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDeleted {
    pub id: String,
    pub object: String,
    pub deleted: bool,
}

/// OpenAI's list envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct List<T> {
    pub object: String,
    pub data: Vec<T>,
    pub first_id: Option<String>,
    pub last_id: Option<String>,
    pub has_more: bool,
}

impl<T> List<T> {
    pub fn new(data: Vec<T>, has_more: bool, id: impl Fn(&T) -> &str) -> Self {
        let first_id = data.first().map(|t| id(t).to_owned());
        let last_id = data.last().map(|t| id(t).to_owned());
        Self { object: "list".into(), data, first_id, last_id, has_more }
    }
}

/// The body of every error response: `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: ApiError,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

/// One input line of a batch file, as far as Nightshift reads it: the body stays raw.
#[derive(Debug, Deserialize)]
pub struct InputLine<'a> {
    pub custom_id: Option<serde_json::Value>,
    pub method: Option<serde_json::Value>,
    pub url: Option<serde_json::Value>,
    #[serde(borrow)]
    pub body: Option<&'a RawValue>,
}

/// One line of a batch's output or error file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputLine {
    pub id: String,
    pub custom_id: String,
    pub response: Option<OutputResponse>,
    pub error: Option<OutputError>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputResponse {
    pub status_code: u16,
    pub request_id: String,
    pub body: Box<RawValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputError {
    pub code: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_and_status_round_trip_through_their_wire_names() {
        for e in Endpoint::ALL {
            assert_eq!(Endpoint::parse(e.as_str()), Some(e));
            assert_eq!(serde_json::to_value(e).unwrap(), e.as_str());
        }
        assert_eq!(BatchStatus::parse("in_progress"), Some(BatchStatus::InProgress));
        assert_eq!(serde_json::to_value(BatchStatus::Cancelling).unwrap(), "cancelling");
        assert!(BatchStatus::Expired.is_terminal());
        assert!(!BatchStatus::Finalizing.is_terminal());
    }

    #[test]
    fn error_response_uses_openai_field_names() {
        let e = ErrorResponse {
            error: ApiError {
                message: "m".into(),
                kind: "invalid_request_error".into(),
                param: None,
                code: Some("c".into()),
            },
        };
        let v = serde_json::to_value(e).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert!(v["error"]["param"].is_null());
    }
}
