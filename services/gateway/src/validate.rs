//! Streaming validation of a batch input file, and the split of a valid one into chunks.

use crate::lines::Line;
use crate::store::ChunkRow;
use nightshift_shared::openai::{BatchError, BatchErrors, Endpoint, InputLine};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

/// At most this many errors are listed on a failed batch; the rest are counted.
pub const MAX_LISTED_ERRORS: usize = 100;
/// Longest `custom_id` accepted, in bytes.
pub const MAX_CUSTOM_ID_BYTES: usize = 512;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Bounds a batch must respect; all come from configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_line_bytes: usize,
    pub max_requests: u64,
    pub chunk_size: u32,
    pub chunk_max_bytes: usize,
}

/// The outcome of validating a whole file.
#[derive(Debug)]
pub enum Validation {
    Valid { total: u64, model: Option<String>, chunks: Vec<ChunkRow> },
    Invalid(BatchErrors),
}

#[derive(Deserialize)]
struct BodyHead {
    model: Option<Value>,
}

#[derive(Default)]
struct OpenChunk {
    first_line: u64,
    last_line: u64,
    count: u32,
    bytes: usize,
}

/// Checks lines one at a time, remembering only what it must (custom ids, chunk bounds).
pub struct Validator {
    endpoint: Endpoint,
    limits: Limits,
    seen: HashMap<String, u64>,
    errors: Vec<BatchError>,
    unlisted_errors: u64,
    requests: u64,
    first_excess_line: Option<u64>,
    crlf_reported: bool,
    model: Option<String>,
    mixed_models: bool,
    chunks: Vec<ChunkRow>,
    open: OpenChunk,
}

impl Validator {
    pub fn new(endpoint: Endpoint, limits: Limits) -> Self {
        Self {
            endpoint,
            limits,
            seen: HashMap::new(),
            errors: Vec::new(),
            unlisted_errors: 0,
            requests: 0,
            first_excess_line: None,
            crlf_reported: false,
            model: None,
            mixed_models: false,
            chunks: Vec::new(),
            open: OpenChunk::default(),
        }
    }

    pub fn line(&mut self, line: Line<'_>) {
        match line {
            Line::TooLong { number, len } => self.error(
                "line_too_long",
                format!(
                    "Line {number} is {len} bytes; a request line may be at most {} bytes \
                     (NIGHTSHIFT_MAX_LINE_BYTES).",
                    self.limits.max_line_bytes
                ),
                Some(number),
                None,
            ),
            Line::Text { number, bytes } => self.text(number, bytes),
        }
    }

    fn text(&mut self, number: u64, mut bytes: &[u8]) {
        if number == 1 && bytes.starts_with(BOM) {
            self.error(
                "invalid_encoding",
                "The file starts with a UTF-8 byte order mark (BOM). Save it as UTF-8 without a \
                 BOM and upload it again."
                    .into(),
                Some(1),
                None,
            );
            bytes = &bytes[BOM.len()..];
        }
        if let Some(stripped) = bytes.strip_suffix(b"\r") {
            if !self.crlf_reported {
                self.crlf_reported = true;
                self.error(
                    "invalid_line_ending",
                    format!(
                        "Line {number} ends with CRLF (\\r\\n). Batch files must use LF (\\n) line \
                         endings: convert the file (for example with dos2unix) and upload it again."
                    ),
                    Some(number),
                    None,
                );
            }
            bytes = stripped;
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        self.requests += 1;
        if self.requests > self.limits.max_requests {
            self.first_excess_line.get_or_insert(number);
            return;
        }
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                return self.error(
                    "invalid_encoding",
                    format!(
                        "Line {number} is not valid UTF-8 (invalid byte at column {}).",
                        e.valid_up_to() + 1
                    ),
                    Some(number),
                    None,
                );
            }
        };
        if let Err((code, message, param)) = self.request(number, text) {
            self.error(code, message, Some(number), param.map(str::to_owned));
        }
    }

    fn request(
        &mut self,
        number: u64,
        text: &str,
    ) -> Result<(), (&'static str, String, Option<&'static str>)> {
        if !text.trim_start().starts_with('{') {
            return Err((
                "invalid_json_line",
                format!("Line {number} is not a JSON object."),
                None,
            ));
        }
        let line: InputLine<'_> = serde_json::from_str(text).map_err(|e| {
            ("invalid_json_line", format!("Line {number} is not valid JSON: {e}."), None)
        })?;
        let custom_id = match line.custom_id {
            None | Some(Value::Null) => {
                return Err(missing(number, "custom_id"));
            }
            Some(Value::String(s)) if s.is_empty() => {
                return Err((
                    "invalid_value",
                    format!("Line {number}: custom_id must not be empty."),
                    Some("custom_id"),
                ));
            }
            Some(Value::String(s)) if s.len() > MAX_CUSTOM_ID_BYTES => {
                return Err((
                    "invalid_value",
                    format!(
                        "Line {number}: custom_id is {} bytes; at most {MAX_CUSTOM_ID_BYTES} are allowed.",
                        s.len()
                    ),
                    Some("custom_id"),
                ));
            }
            Some(Value::String(s)) => s,
            Some(other) => {
                return Err(wrong_type(number, "custom_id", "a string", &other));
            }
        };
        match line.method {
            None | Some(Value::Null) => return Err(missing(number, "method")),
            Some(Value::String(m)) if m == "POST" => {}
            Some(other) => {
                return Err((
                    "invalid_value",
                    format!("Line {number}: method must be \"POST\", not {other}."),
                    Some("method"),
                ));
            }
        }
        match line.url {
            None | Some(Value::Null) => return Err(missing(number, "url")),
            Some(Value::String(u)) if u == self.endpoint.as_str() => {}
            Some(other) => {
                return Err((
                    "invalid_url",
                    format!(
                        "Line {number}: url {other} does not match the batch's endpoint \"{}\".",
                        self.endpoint.as_str()
                    ),
                    Some("url"),
                ));
            }
        }
        let body = match line.body {
            None => return Err(missing(number, "body")),
            Some(raw) if raw.get().starts_with('{') => raw,
            Some(raw) => {
                let other: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
                return Err(wrong_type(number, "body", "a JSON object", &other));
            }
        };
        let head: BodyHead = serde_json::from_str(body.get()).map_err(|e| {
            ("invalid_json_line", format!("Line {number} is not valid JSON: {e}."), None)
        })?;
        if has_surrogate_escape(body.get())
            && let Err(e) = serde_json::from_str::<Value>(body.get())
        {
            return Err((
                "invalid_json_line",
                format!("Line {number} is not valid JSON: {e} (a lone UTF-16 surrogate)."),
                Some("body"),
            ));
        }
        let model = match head.model {
            None | Some(Value::Null) => return Err(missing(number, "body.model")),
            Some(Value::String(m)) if m.contains(|c: char| c.is_control()) => {
                return Err((
                    "invalid_value",
                    format!(
                        "Line {number}: body.model holds a control character; no model is named so."
                    ),
                    Some("body.model"),
                ));
            }
            Some(Value::String(m)) if !m.is_empty() => m,
            Some(other) => return Err(wrong_type(number, "body.model", "a model name", &other)),
        };
        if let Some(first) = self.seen.get(&custom_id) {
            return Err((
                "duplicate_custom_id",
                format!(
                    "Line {number}: custom_id {} is already used on line {first}; \
                     each request needs a unique custom_id.",
                    Value::String(custom_id.clone())
                ),
                Some("custom_id"),
            ));
        }
        match &self.model {
            None => self.model = Some(model),
            Some(first) if *first != model => self.mixed_models = true,
            Some(_) => {}
        }
        let cost = text.len() + custom_id.len() + 32;
        self.seen.insert(custom_id, number);
        self.add_to_chunk(number, cost);
        Ok(())
    }

    fn add_to_chunk(&mut self, number: u64, cost: usize) {
        let full = self.open.count >= self.limits.chunk_size
            || (self.open.count > 0 && self.open.bytes + cost > self.limits.chunk_max_bytes);
        if full {
            self.close_chunk();
        }
        if self.open.count == 0 {
            self.open.first_line = number;
        }
        self.open.last_line = number;
        self.open.count += 1;
        self.open.bytes += cost;
    }

    fn close_chunk(&mut self) {
        let open = std::mem::take(&mut self.open);
        if open.count > 0 {
            self.chunks.push(ChunkRow {
                chunk_index: self.chunks.len() as i32,
                first_line: open.first_line as i32,
                last_line: open.last_line as i32,
                request_count: open.count as i32,
            });
        }
    }

    fn error(&mut self, code: &str, message: String, line: Option<u64>, param: Option<String>) {
        if self.errors.len() < MAX_LISTED_ERRORS {
            self.errors.push(BatchError { code: code.into(), message, param, line });
        } else {
            self.unlisted_errors += 1;
        }
    }

    /// Ends validation once every line has been seen.
    pub fn finish(mut self, file_bytes: u64) -> Validation {
        if file_bytes == 0 {
            self.error("empty_file", "The input file is empty.".into(), None, None);
        } else if self.requests == 0 && self.errors.is_empty() {
            self.error(
                "empty_file",
                "The input file holds no requests, only blank lines.".into(),
                None,
                None,
            );
        }
        if let Some(line) = self.first_excess_line {
            self.error(
                "too_many_requests",
                format!(
                    "The file holds {} requests; a batch may hold at most {} \
                     (NIGHTSHIFT_MAX_REQUESTS_PER_BATCH). Split it into several batches.",
                    self.requests, self.limits.max_requests
                ),
                Some(line),
                None,
            );
        }
        if self.unlisted_errors > 0 {
            let n = self.unlisted_errors;
            self.errors.push(BatchError {
                code: "too_many_errors".into(),
                message: format!("{n} more errors are not listed; fix the ones above and retry."),
                param: None,
                line: None,
            });
        }
        if !self.errors.is_empty() {
            return Validation::Invalid(BatchErrors::new(self.errors));
        }
        self.close_chunk();
        Validation::Valid {
            total: self.requests,
            model: if self.mixed_models { None } else { self.model },
            chunks: self.chunks,
        }
    }
}

/// Whether `json` holds a `\uD800`-`\uDFFF` escape: serde_json skips over strings it does not
/// decode without checking them, so only then is the whole body parsed to find a lone one.
fn has_surrogate_escape(json: &str) -> bool {
    json.as_bytes().windows(4).any(|w| {
        w[0] == b'\\'
            && w[1] == b'u'
            && matches!(w[2], b'd' | b'D')
            && matches!(w[3], b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F')
    })
}

fn missing(number: u64, param: &'static str) -> (&'static str, String, Option<&'static str>) {
    (
        "missing_required_parameter",
        format!("Line {number} is missing the required field {param}."),
        Some(param),
    )
}

fn wrong_type(
    number: u64,
    param: &'static str,
    expected: &str,
    got: &Value,
) -> (&'static str, String, Option<&'static str>) {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    ("invalid_type", format!("Line {number}: {param} must be {expected}, not {got}."), Some(param))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lines::LineSplitter;

    const LIMITS: Limits =
        Limits { max_line_bytes: 1000, max_requests: 5, chunk_size: 2, chunk_max_bytes: 10_000 };

    fn req(id: &str) -> String {
        format!(
            r#"{{"custom_id":"{id}","method":"POST","url":"/v1/chat/completions","body":{{"model":"m","messages":[]}}}}"#
        )
    }

    fn validate(file: &[u8], limits: Limits) -> Validation {
        let mut v = Validator::new(Endpoint::ChatCompletions, limits);
        let mut s = LineSplitter::new(limits.max_line_bytes);
        let mut f = |l: Line<'_>| -> Result<(), ()> {
            v.line(l);
            Ok(())
        };
        s.feed(file, &mut f).unwrap();
        s.finish(&mut f).unwrap();
        v.finish(file.len() as u64)
    }

    fn errors(file: &[u8]) -> Vec<(String, Option<u64>, Option<String>)> {
        match validate(file, LIMITS) {
            Validation::Invalid(e) => {
                e.data.into_iter().map(|e| (e.code, e.line, e.param)).collect()
            }
            Validation::Valid { .. } => panic!("expected errors"),
        }
    }

    #[test]
    fn valid_file_with_blank_lines_is_chunked_by_count() {
        let file = format!("{}\n\n{}\n{}\n", req("a"), req("b"), req("c"));
        let Validation::Valid { total, model, chunks } = validate(file.as_bytes(), LIMITS) else {
            panic!("expected valid")
        };
        assert_eq!(total, 3);
        assert_eq!(model.as_deref(), Some("m"));
        assert_eq!(
            chunks,
            [
                ChunkRow { chunk_index: 0, first_line: 1, last_line: 3, request_count: 2 },
                ChunkRow { chunk_index: 1, first_line: 4, last_line: 4, request_count: 1 },
            ]
        );
    }

    #[test]
    fn chunks_close_early_when_their_bytes_would_exceed_the_limit() {
        let limits = Limits { chunk_size: 100, chunk_max_bytes: 300, ..LIMITS };
        let file = format!("{}\n{}\n{}\n", req("a"), req("b"), req("c"));
        let Validation::Valid { chunks, .. } = validate(file.as_bytes(), limits) else { panic!() };
        assert_eq!(chunks.iter().map(|c| c.request_count).collect::<Vec<_>>(), [2, 1]);
    }

    #[test]
    fn each_bad_field_is_reported_with_its_line_and_param() {
        let file = [
            req("a"),
            r#"{"method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}"#.into(),
            r#"{"custom_id":7,"method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}"#
                .into(),
            r#"{"custom_id":"x","method":"GET","url":"/v1/chat/completions","body":{"model":"m"}}"#
                .into(),
            r#"{"custom_id":"y","method":"POST","url":"/v1/embeddings","body":{"model":"m"}}"#
                .into(),
            r#"{"custom_id":"z","method":"POST","url":"/v1/chat/completions","body":{}}"#.into(),
            r#"{"custom_id":"w","method":"POST","url":"/v1/chat/completions","body":[1]}"#.into(),
            req("a"),
            "[1,2]".into(),
            "{not json".into(),
        ]
        .join("\n");
        let limits = Limits { max_requests: 100, ..LIMITS };
        let Validation::Invalid(e) = validate(file.as_bytes(), limits) else { panic!() };
        let got: Vec<_> =
            e.data.iter().map(|e| (e.code.as_str(), e.line, e.param.as_deref())).collect();
        assert_eq!(
            got,
            [
                ("missing_required_parameter", Some(2), Some("custom_id")),
                ("invalid_type", Some(3), Some("custom_id")),
                ("invalid_value", Some(4), Some("method")),
                ("invalid_url", Some(5), Some("url")),
                ("missing_required_parameter", Some(6), Some("body.model")),
                ("invalid_type", Some(7), Some("body")),
                ("duplicate_custom_id", Some(8), Some("custom_id")),
                ("invalid_json_line", Some(9), None),
                ("invalid_json_line", Some(10), None),
            ]
        );
        assert!(e.data[6].message.contains("already used on line 1"), "{}", e.data[6].message);
    }

    #[test]
    fn encoding_and_line_ending_problems_get_precise_messages() {
        let bom = format!("\u{feff}{}\n{}\n", req("a"), req("b"));
        assert_eq!(errors(bom.as_bytes()), [("invalid_encoding".into(), Some(1), None)]);

        let crlf = format!("{}\r\n{}\r\n", req("a"), req("b"));
        assert_eq!(errors(crlf.as_bytes()), [("invalid_line_ending".into(), Some(1), None)]);

        let mut bad = format!("{}\n", req("a")).into_bytes();
        bad.extend_from_slice(b"{\"custom_id\":\"\xff\"}\n");
        assert_eq!(errors(&bad), [("invalid_encoding".into(), Some(2), None)]);

        assert_eq!(errors(b""), [("empty_file".into(), None, None)]);
        assert_eq!(errors(b"\n \n"), [("empty_file".into(), None, None)]);
    }

    #[test]
    fn too_long_lines_and_too_many_requests_name_their_limits() {
        let long = format!("{}\n{{\"pad\":\"{}\"}}\n", req("a"), "x".repeat(2000));
        let Validation::Invalid(e) = validate(long.as_bytes(), LIMITS) else { panic!() };
        assert_eq!((e.data[0].code.as_str(), e.data[0].line), ("line_too_long", Some(2)));
        assert!(e.data[0].message.contains("at most 1000 bytes"));

        let many: String = (0..7).map(|i| req(&i.to_string()) + "\n").collect();
        let Validation::Invalid(e) = validate(many.as_bytes(), LIMITS) else { panic!() };
        assert_eq!((e.data[0].code.as_str(), e.data[0].line), ("too_many_requests", Some(6)));
        assert!(e.data[0].message.contains("holds 7 requests"), "{}", e.data[0].message);
    }

    #[test]
    fn errors_past_the_listed_maximum_are_counted() {
        let file = "x\n".repeat(MAX_LISTED_ERRORS + 5);
        let limits = Limits { max_requests: 1000, ..LIMITS };
        let Validation::Invalid(e) = validate(file.as_bytes(), limits) else { panic!() };
        assert_eq!(e.data.len(), MAX_LISTED_ERRORS + 1);
        assert!(e.data.last().unwrap().message.starts_with("5 more errors"));
    }
}
