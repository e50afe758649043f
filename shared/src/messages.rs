//! Messages that travel on NATS between the gateway, workers and the collector.

use crate::openai::Endpoint;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A slice of a batch handed to one worker: up to N consecutive requests of the input file.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChunkMessage {
    pub batch_id: String,
    pub chunk_index: u32,
    pub endpoint: Endpoint,
    /// Unix seconds after which the batch has expired and unstarted requests end `batch_expired`.
    pub expires_at: i64,
    pub requests: Vec<ChunkRequest>,
}

/// One request of a chunk, with its 1-based line in the input file.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChunkRequest {
    pub line: u32,
    pub custom_id: String,
    pub body: Box<RawValue>,
}

/// The result of one request, published by the worker that ran it.
#[derive(Debug, Serialize, Deserialize)]
pub struct ResultMessage {
    pub batch_id: String,
    pub chunk_index: u32,
    pub line: u32,
    pub custom_id: String,
    /// `batch_req_...`, the id of this line in the output or error file.
    pub request_id: String,
    pub worker_id: String,
    pub outcome: ResultOutcome,
    /// Token counts as the backend reported them; absent figures stay absent.
    #[serde(default)]
    pub usage: Option<TokenUsage>,
}

/// Several results of one chunk in one queue message. Workers group the results of a chunk as
/// they finish (a few dozen, or what finished within a few milliseconds), so the queue, the
/// collector and their acks handle one message per group instead of one per request.
#[derive(Debug, Serialize, Deserialize)]
pub struct ResultGroup {
    pub results: Vec<ResultMessage>,
}

impl ResultGroup {
    /// Reads a result message: a group, or a single [`ResultMessage`] as workers before groups
    /// published them.
    pub fn decode(payload: &[u8]) -> Result<Vec<ResultMessage>, serde_json::Error> {
        if payload.starts_with(br#"{"results":"#) {
            return serde_json::from_slice::<Self>(payload).map(|g| g.results);
        }
        match serde_json::from_slice::<ResultMessage>(payload) {
            Ok(one) => Ok(vec![one]),
            Err(e) => serde_json::from_slice::<Self>(payload).map(|g| g.results).map_err(|_| e),
        }
    }

    /// The queue's de-duplication id of a group holding `lines` of `batch_id`: the same id
    /// only for the same set of lines, so a re-publish of a group is dropped, and a group a
    /// redelivered chunk formed differently is not. SHA-256 of the sorted lines: the id is on the
    /// wire, so it must not change between builds (std's hasher may).
    pub fn msg_id(batch_id: &str, lines: &[u32]) -> String {
        use sha2::{Digest, Sha256};
        let mut sorted = lines.to_vec();
        sorted.sort_unstable();
        let mut hasher = Sha256::new();
        for line in &sorted {
            hasher.update(line.to_le_bytes());
        }
        let digest = hasher.finalize();
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("{batch_id}.g{}.{hex}", sorted.len())
    }

    /// The encoded group of already encoded results (each a [`ResultMessage`] as JSON).
    pub fn encode_parts<'a>(results: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
        let mut out = Vec::from(&br#"{"results":["#[..]);
        for (i, result) in results.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(result);
        }
        out.extend_from_slice(b"]}");
        out
    }
}

/// Externally tagged on purpose: serde cannot read a `RawValue` inside an internally tagged enum.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultOutcome {
    /// The backend answered; a 2xx goes to the output file, anything else to the error file.
    Response { status_code: u16, body: Box<RawValue> },
    /// No answer could be had (timeout, connection failure, cancelled, expired).
    Error { code: String, message: String },
    /// An answer too large for one queue message: its body is the object `object` of the
    /// queue's object store (`bytes` long), which the collector reads and then deletes.
    Stored { status_code: u16, object: String, bytes: u64 },
}

impl ResultOutcome {
    /// Whether the request succeeded: its line goes to the output file, not the error file.
    pub fn is_success(&self) -> bool {
        match self {
            Self::Response { status_code, .. } | Self::Stored { status_code, .. } => {
                (200..300).contains(status_code)
            }
            Self::Error { .. } => false,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub cached_tokens: Option<u64>,
}

/// Control state of a batch, kept on the [`crate::subjects::CONTROL_STREAM`] stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchControl {
    Cancelled,
    Expired,
}

impl BatchControl {
    /// The error code unstarted requests of such a batch end with.
    pub fn error_code(self) -> &'static str {
        match self {
            Self::Cancelled => "batch_cancelled",
            Self::Expired => "batch_expired",
        }
    }

    /// The error message of such a request, in the error file.
    pub fn never_ran_message(self) -> &'static str {
        match self {
            Self::Cancelled => "The batch was cancelled before this request ran.",
            Self::Expired => "The batch expired before this request ran.",
        }
    }
}

/// Prefix of a request's id (`batch_req_...`), the `id` of its line in the output or error file.
const REQUEST_ID_PREFIX: &str = "batch_req_";

/// A fresh id for a request a worker ran.
pub fn new_request_id() -> String {
    format!("{REQUEST_ID_PREFIX}{}", uuid::Uuid::new_v4().simple())
}

/// The id of a request of `batch_id` that never ran (its line `line`): stable, so a finalize
/// that runs twice writes the same file.
pub fn never_ran_request_id(batch_id: &str, line: u32) -> String {
    format!("{REQUEST_ID_PREFIX}{}_{line}", batch_id.trim_start_matches("batch_"))
}

/// The `request_id` of a response in the output file: the request's id as `req_...`, as OpenAI
/// writes it.
pub fn response_request_id(request_id: &str) -> String {
    match request_id.strip_prefix(REQUEST_ID_PREFIX) {
        Some(rest) => format!("req_{rest}"),
        None => request_id.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_with_raw_bodies_survive_a_round_trip() {
        let result = ResultMessage {
            batch_id: "b".into(),
            chunk_index: 1,
            line: 2,
            custom_id: "c".into(),
            request_id: "r".into(),
            worker_id: "w".into(),
            outcome: ResultOutcome::Response {
                status_code: 200,
                body: RawValue::from_string(r#"{"object":"chat.completion"}"#.into()).unwrap(),
            },
            usage: Some(TokenUsage { prompt_tokens: Some(3), ..Default::default() }),
        };
        let back: ResultMessage =
            serde_json::from_slice(&serde_json::to_vec(&result).unwrap()).unwrap();
        assert!(back.outcome.is_success());
        let ResultOutcome::Response { body, .. } = back.outcome else { panic!() };
        assert_eq!(body.get(), r#"{"object":"chat.completion"}"#);
    }

    fn result(line: u32) -> ResultMessage {
        ResultMessage {
            batch_id: "b".into(),
            chunk_index: 0,
            line,
            custom_id: format!("c{line}"),
            request_id: "r".into(),
            worker_id: "w".into(),
            outcome: ResultOutcome::Error { code: "x".into(), message: "m".into() },
            usage: None,
        }
    }

    #[test]
    fn groups_and_single_results_both_decode() {
        let group = ResultGroup { results: vec![result(1), result(2)] };
        let lines = |v: Vec<ResultMessage>| v.iter().map(|r| r.line).collect::<Vec<_>>();
        let decoded = ResultGroup::decode(&serde_json::to_vec(&group).unwrap()).unwrap();
        assert_eq!(lines(decoded), vec![1, 2]);
        let single = ResultGroup::decode(&serde_json::to_vec(&result(7)).unwrap()).unwrap();
        assert_eq!(lines(single), vec![7]);
        assert!(ResultGroup::decode(b"{\"neither\": 1}").is_err());
    }

    #[test]
    fn a_group_encoded_from_its_parts_decodes_like_one_encoded_whole() {
        let parts: Vec<Vec<u8>> =
            [result(4), result(9)].iter().map(|r| serde_json::to_vec(r).unwrap()).collect();
        let encoded = ResultGroup::encode_parts(parts.iter().map(Vec::as_slice));
        let lines: Vec<u32> =
            ResultGroup::decode(&encoded).unwrap().iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![4, 9]);
    }

    #[test]
    fn request_ids_keep_openai_prefixes() {
        let id = new_request_id();
        assert!(id.starts_with("batch_req_") && id.len() == "batch_req_".len() + 32, "{id}");
        assert_eq!(response_request_id("batch_req_abc"), "req_abc");
        assert_eq!(never_ran_request_id("batch_42", 7), "batch_req_42_7");
    }

    #[test]
    fn a_group_id_is_the_same_in_every_build() {
        // Pinned: a re-publish after an upgrade must carry the id the first publish had.
        assert_eq!(ResultGroup::msg_id("b", &[1, 2, 3]), "b.g3.4636993d3e1da4e9");
    }

    #[test]
    fn a_group_id_names_its_set_of_lines() {
        assert_eq!(ResultGroup::msg_id("b", &[3, 1, 2]), ResultGroup::msg_id("b", &[1, 2, 3]));
        assert_ne!(ResultGroup::msg_id("b", &[1, 2, 3]), ResultGroup::msg_id("b", &[1, 2, 4]));
        assert_ne!(ResultGroup::msg_id("b", &[1, 2]), ResultGroup::msg_id("c", &[1, 2]));
    }
}
