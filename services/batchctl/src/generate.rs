//! Synthetic batch input files: N requests sharing one system prompt, deterministic for a seed.

use serde::Serialize;
use std::io::{self, Write};

/// The system prompt every request shares, so the backend's prompt cache has something to reuse.
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are a careful, concise assistant helping an \
engineering team write documentation, reviews and explanations. Answer in plain English, keep \
to the point, prefer concrete examples over abstractions, and say so when a question is \
ambiguous instead of guessing. Use short paragraphs and no more than one list per answer.";

const TASKS: &[&str] = &[
    "Explain",
    "Summarize the key ideas of",
    "Write a short tutorial on",
    "List common mistakes with",
    "Compare two approaches to",
    "Give an analogy for",
    "Write a checklist for",
    "Describe the history of",
    "Argue for and against",
    "Draft an FAQ entry about",
];

const TOPICS: &[&str] = &[
    "database indexing",
    "rate limiting",
    "garbage collection",
    "TCP congestion control",
    "unit testing",
    "cache invalidation",
    "message queues",
    "consistent hashing",
    "code review",
    "memory leaks",
    "load balancing",
    "feature flags",
    "schema migrations",
    "distributed tracing",
    "backpressure",
    "idempotent APIs",
    "GPU batch inference",
    "prompt caching",
    "log aggregation",
    "incident postmortems",
];

const AUDIENCES: &[&str] = &[
    "a new hire",
    "a product manager",
    "a senior engineer",
    "a student",
    "an on-call operator",
    "a technical writer",
    "a data scientist",
    "a CTO",
];

const LENGTHS: &[&str] = &[
    "one sentence",
    "two sentences",
    "a short paragraph",
    "three bullet points",
    "under 50 words",
];

/// Which API the generated requests call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GenEndpoint {
    Chat,
    Completions,
    Embeddings,
}

impl GenEndpoint {
    pub fn url(self) -> &'static str {
        match self {
            Self::Chat => "/v1/chat/completions",
            Self::Completions => "/v1/completions",
            Self::Embeddings => "/v1/embeddings",
        }
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenSpec {
    pub requests: u64,
    pub model: String,
    pub endpoint: GenEndpoint,
    pub system_prompt: String,
    pub max_tokens: u32,
    pub seed: u64,
}

#[derive(Serialize)]
struct Line<'a> {
    custom_id: &'a str,
    method: &'static str,
    url: &'static str,
    body: Body<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Body<'a> {
    Chat { model: &'a str, messages: [Message<'a>; 2], max_tokens: u32 },
    Completion { model: &'a str, prompt: String, max_tokens: u32 },
    Embedding { model: &'a str, input: &'a str },
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

/// Writes `spec.requests` JSONL lines, `custom_id` `request-1` to `request-N` (numbered like the
/// gateway's 1-based line numbers), to `out`.
pub fn write_batch(spec: &GenSpec, out: &mut impl Write) -> io::Result<()> {
    let mut custom_id = String::new();
    for i in 1..=spec.requests {
        custom_id.clear();
        custom_id.push_str("request-");
        custom_id.push_str(&i.to_string());
        let user = prompt(spec.seed, i);
        let body = match spec.endpoint {
            GenEndpoint::Chat => Body::Chat {
                model: &spec.model,
                messages: [
                    Message { role: "system", content: &spec.system_prompt },
                    Message { role: "user", content: &user },
                ],
                max_tokens: spec.max_tokens,
            },
            GenEndpoint::Completions => Body::Completion {
                model: &spec.model,
                prompt: format!("{}\n\n{user}", spec.system_prompt),
                max_tokens: spec.max_tokens,
            },
            GenEndpoint::Embeddings => Body::Embedding { model: &spec.model, input: &user },
        };
        let line = Line { custom_id: &custom_id, method: "POST", url: spec.endpoint.url(), body };
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// The user prompt of request `i`: a function of the seed and `i` alone.
pub fn prompt(seed: u64, i: u64) -> String {
    let mut rng = SplitMix64(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut pick = |items: &[&'static str]| items[rng.below(items.len())];
    let (task, topic, audience, length) =
        (pick(TASKS), pick(TOPICS), pick(AUDIENCES), pick(LENGTHS));
    let examples = 1 + rng.below(5);
    format!(
        "{task} {topic} for {audience}, in {length}. Use {examples} concrete example{}.",
        if examples == 1 { "" } else { "s" }
    )
}

/// SplitMix64: tiny, and its output for a seed is fixed forever (unlike `rand`'s `StdRng`).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(endpoint: GenEndpoint) -> GenSpec {
        GenSpec {
            requests: 3,
            model: "m".into(),
            endpoint,
            system_prompt: "sys".into(),
            max_tokens: 7,
            seed: 1,
        }
    }

    #[test]
    fn prompts_depend_on_seed_and_index_only() {
        assert_eq!(prompt(1, 5), prompt(1, 5));
        assert_ne!((1..20).map(|i| prompt(1, i)).collect::<Vec<_>>(), {
            (1..20).map(|i| prompt(2, i)).collect::<Vec<_>>()
        });
    }

    #[test]
    fn each_endpoint_gets_its_own_body_shape() {
        for (endpoint, field) in [
            (GenEndpoint::Chat, "messages"),
            (GenEndpoint::Completions, "prompt"),
            (GenEndpoint::Embeddings, "input"),
        ] {
            let mut out = Vec::new();
            write_batch(&spec(endpoint), &mut out).unwrap();
            let lines: Vec<serde_json::Value> = out
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_slice(l).unwrap())
                .collect();
            assert_eq!(lines.len(), 3);
            assert_eq!(lines[2]["custom_id"], "request-3");
            assert_eq!(lines[0]["url"], endpoint.url());
            assert!(lines[0]["body"][field].is_string() || lines[0]["body"][field].is_array());
        }
    }
}
