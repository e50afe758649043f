//! Batch input files: N chat requests, optionally padded to a line size, and the same request
//! as the direct client sends it to the backend.

use crate::stack::MODEL;
use anyhow::Context;
use std::io::{BufWriter, Write};
use std::path::Path;

const SYSTEM: &str = "You are a careful, concise assistant. Answer in plain English.";
const FILLER: &str = "Consider the surrounding context carefully before answering. ";

/// The user prompt of request `i`.
pub fn prompt(i: u64) -> String {
    format!("Explain topic number {i} in two sentences.")
}

/// One input line: request `i`, its user prompt padded so the line is about `line_bytes` long.
pub fn line(i: u64, line_bytes: Option<usize>) -> String {
    let build = |user: &str| {
        serde_json::json!({
            "custom_id": format!("request-{i}"),
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": MODEL,
                "max_tokens": 16,
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": user},
                ],
            },
        })
        .to_string()
    };
    let mut user = prompt(i);
    let plain = build(&user);
    let Some(target) = line_bytes else { return plain };
    let mut missing = target.saturating_sub(plain.len());
    user.push(' ');
    while missing > 0 {
        let take = missing.min(FILLER.len());
        user.push_str(&FILLER[..take]);
        missing -= take;
    }
    build(user.trim_end())
}

/// Writes `requests` lines to `path`; returns the file's size in bytes.
pub fn write_file(path: &Path, requests: u64, line_bytes: Option<usize>) -> anyhow::Result<u64> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut bytes = 0u64;
    for i in 1..=requests {
        let l = line(i, line_bytes);
        out.write_all(l.as_bytes())?;
        out.write_all(b"\n")?;
        bytes += l.len() as u64 + 1;
    }
    out.flush().with_context(|| format!("writing {}", path.display()))?;
    Ok(bytes)
}

/// Request `i` as a worker sends it to Ollama's `/api/chat`.
/// The OpenAI chat body of request `i` for `model`, as the real-model figure sends it both in
/// the batch and from the direct client.
pub fn openai_chat(i: u64, model: &str, max_tokens: u64) -> serde_json::Value {
    serde_json::json!({
        "model": model,
        "max_tokens": max_tokens,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": prompt(i)},
        ],
    })
}

/// A batch file of `requests` lines holding [`openai_chat`] bodies.
pub fn write_openai_file(
    path: &Path,
    requests: u64,
    model: &str,
    max_tokens: u64,
) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::new(file);
    for i in 1..=requests {
        let line = serde_json::json!({"custom_id": format!("request-{i}"), "method": "POST",
            "url": "/v1/chat/completions", "body": openai_chat(i, model, max_tokens)});
        writeln!(out, "{line}")?;
    }
    out.flush().with_context(|| format!("writing {}", path.display()))
}

pub fn ollama_chat(i: u64) -> serde_json::Value {
    serde_json::json!({
        "model": MODEL,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": prompt(i)},
        ],
        "stream": false,
        "keep_alive": -1,
        "options": {"num_predict": 16},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_lines_are_valid_requests_of_about_the_asked_size() {
        for i in [1, 99, 170_000] {
            let l = line(i, Some(900));
            assert!((895..=905).contains(&l.len()), "{} bytes", l.len());
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            assert_eq!(v["custom_id"], format!("request-{i}"));
            assert_eq!(v["body"]["model"], MODEL);
        }
        assert!(line(1, None).len() < 300);
    }

    #[test]
    fn file_size_is_reported_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        let bytes = write_file(&path, 1000, Some(500)).unwrap();
        assert_eq!(bytes, std::fs::metadata(&path).unwrap().len());
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1000);
    }
}
