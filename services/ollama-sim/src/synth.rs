//! Deterministic "model output": token counts, pseudo-word text, JSON and embeddings,
//! all derived from a hash of the request so the same request always gets the same answer.

use serde_json::{Map, Value};

/// FNV-1a, chosen over `std`'s hasher because its output must not change between
/// Rust releases: tests and benchmarks compare answers across runs.
#[derive(Clone, Copy, Debug)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn bytes(mut self, bytes: &[u8]) -> Self {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self
    }

    /// A string plus a terminator, so ("ab","c") and ("a","bc") hash differently.
    pub fn str(self, s: &str) -> Self {
        self.bytes(s.as_bytes()).bytes(&[0xff])
    }

    pub fn u64(self, v: u64) -> Self {
        self.bytes(&v.to_le_bytes())
    }

    pub fn finish(self) -> u64 {
        splitmix(self.0)
    }
}

/// SplitMix64 finaliser: spreads a seed into a well-mixed value.
pub fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A tiny deterministic stream of numbers from one seed.
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        splitmix(self.0)
    }
}

/// Prompt tokens for some text: about four characters a token, like real tokenisers on English.
pub fn count_tokens(text: &str) -> u64 {
    text.chars().count().div_ceil(4) as u64
}

/// The length a completion has when nothing caps it: 16..=64 tokens.
pub fn natural_length(seed: u64) -> u64 {
    16 + splitmix(seed ^ 0x5eed) % 49
}

const SYLLABLES: [&str; 16] = [
    "ka", "lo", "mi", "ru", "ta", "sen", "vor", "qua", "li", "ne", "dro", "fa", "zi", "pel", "mon",
    "tur",
];

fn word(stream: &mut Stream) -> String {
    let n = stream.next();
    let syllables = 1 + (n % 3) as usize;
    (0..syllables).map(|i| SYLLABLES[((n >> (8 + 4 * i)) & 0xf) as usize]).collect()
}

/// What a simulated generation produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    pub text: String,
    /// Tokens generated (one per word).
    pub eval_count: u64,
    /// "stop" when the text ended by itself or hit a stop sequence, "length" when capped.
    pub done_reason: &'static str,
}

/// Output format a request asked for.
#[derive(Clone, Debug, PartialEq)]
pub enum Format {
    Text,
    Json,
    Schema(Value),
}

impl Format {
    /// Reads Ollama's `format` field: absent/empty is text, "json" is any JSON object,
    /// an object is a JSON schema.
    pub fn from_request(format: Option<&Value>) -> Self {
        match format {
            Some(Value::String(s)) if s == "json" => Self::Json,
            Some(schema @ Value::Object(_)) => Self::Schema(schema.clone()),
            _ => Self::Text,
        }
    }
}

/// Generates the completion for a request hash: `max_tokens` caps the length
/// (Ollama's num_predict; negative means no cap), `stop` cuts the text at the first
/// stop sequence it produces.
pub fn complete(
    seed: u64,
    max_tokens: Option<i64>,
    stop: &[String],
    format: &Format,
) -> Completion {
    let natural = natural_length(seed);
    let (count, mut done_reason) = match max_tokens {
        Some(cap) if cap >= 0 && (cap as u64) < natural => (cap as u64, "length"),
        _ => (natural, "stop"),
    };
    let mut stream = Stream(seed);
    let mut text = String::new();
    let mut eval_count = 0;
    for _ in 0..count {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&word(&mut stream));
        eval_count += 1;
        if format == &Format::Text
            && let Some(cut) =
                stop.iter().filter(|s| !s.is_empty()).filter_map(|s| text.find(s.as_str())).min()
        {
            text.truncate(cut);
            done_reason = "stop";
            break;
        }
    }
    let text = match format {
        Format::Text => text,
        Format::Json => {
            Value::Object(Map::from_iter([("response".to_owned(), Value::String(text))]))
                .to_string()
        }
        Format::Schema(schema) => from_schema(schema, &mut Stream(seed), 0).to_string(),
    };
    Completion { text, eval_count, done_reason }
}

/// A value that satisfies the common parts of a JSON schema (type, properties, items,
/// enum, const); an object schema always yields an object, so clients can parse it.
fn from_schema(schema: &Value, stream: &mut Stream, depth: usize) -> Value {
    if depth > 8 {
        return Value::Null;
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    if let Some(Value::Array(options)) = schema.get("enum")
        && !options.is_empty()
    {
        return options[(stream.next() % options.len() as u64) as usize].clone();
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(types)) => {
            types.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("null")
        }
        _ if schema.get("properties").is_some() || depth == 0 => "object",
        _ => "string",
    };
    match ty {
        "object" => {
            let mut out = Map::new();
            if let Some(Value::Object(props)) = schema.get("properties") {
                for (name, prop) in props {
                    out.insert(name.clone(), from_schema(prop, stream, depth + 1));
                }
            }
            Value::Object(out)
        }
        "array" => {
            let items = schema.get("items").cloned().unwrap_or(Value::Null);
            let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(1).clamp(1, 3);
            Value::Array((0..min).map(|_| from_schema(&items, stream, depth + 1)).collect())
        }
        "integer" => Value::from(stream.next() % 100),
        "number" => Value::from((stream.next() % 1000) as f64 / 10.0),
        "boolean" => Value::Bool(stream.next() & 1 == 1),
        "null" => Value::Null,
        _ => Value::String(format!("{} {}", word(stream), word(stream))),
    }
}

/// A value fitting `schema`, a pure function of the schema and `seed` (tool arguments).
pub fn value_from_schema(schema: &Value, seed: u64) -> Value {
    from_schema(schema, &mut Stream(seed), 0)
}

/// Ollama's `normalize`: `v / max(|v|, 1e-12)`.
pub fn normalize(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt().max(1e-12);
    v.iter().map(|x| (f64::from(*x) / norm) as f32).collect()
}

/// What Ollama does with `dimensions`: the vector is normalised, and when
/// `0 < dimensions < len` cut to that length and normalised again; other values are ignored.
pub fn apply_dimensions(v: &[f32], dimensions: i64) -> Vec<f32> {
    let v = normalize(v);
    match usize::try_from(dimensions) {
        Ok(d) if d > 0 && d < v.len() => normalize(&v[..d]),
        _ => v,
    }
}

/// An L2-normalised embedding of `dim` floats, a pure function of model and input.
pub fn embedding(model: &str, input: &str, dim: usize) -> Vec<f32> {
    let mut stream = Stream(Fnv::default().str(model).str(input).finish());
    let raw: Vec<f64> =
        (0..dim).map(|_| (stream.next() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0).collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
    raw.iter().map(|x| (x / norm) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_is_deterministic_and_has_eval_count_words() {
        let a = complete(42, None, &[], &Format::Text);
        assert_eq!(a, complete(42, None, &[], &Format::Text));
        assert_eq!(a.text.split(' ').count() as u64, a.eval_count);
        assert!((16..=64).contains(&a.eval_count));
        assert_eq!(a.done_reason, "stop");
        let capped = complete(42, Some(3), &[], &Format::Text);
        assert_eq!((capped.eval_count, capped.done_reason), (3, "length"));
        assert_eq!(capped.text.split(' ').count(), 3);
    }

    #[test]
    fn stop_sequence_cuts_the_text() {
        let full = complete(7, None, &[], &Format::Text);
        let third = full.text.split(' ').nth(2).unwrap().to_owned();
        let cut = complete(7, None, std::slice::from_ref(&third), &Format::Text);
        assert!(!cut.text.contains(&third));
        assert!(cut.eval_count <= 3);
    }

    #[test]
    fn json_formats_give_parseable_objects() {
        let json = complete(1, None, &[], &Format::Json);
        assert!(serde_json::from_str::<Value>(&json.text).unwrap().is_object());
        let schema = serde_json::json!({"type":"object","properties":{
            "name":{"type":"string"},"age":{"type":"integer"},"tags":{"type":"array","items":{"type":"string"}},
            "kind":{"enum":["a","b"]}}});
        let v: Value =
            serde_json::from_str(&complete(1, None, &[], &Format::Schema(schema)).text).unwrap();
        assert!(v["name"].is_string() && v["age"].is_u64() && v["tags"].is_array());
        assert!(v["kind"] == "a" || v["kind"] == "b");
    }

    #[test]
    fn embeddings_are_unit_length_and_deterministic() {
        let e = embedding("m", "hello", 384);
        assert_eq!(e.len(), 384);
        let norm: f32 = e.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
        assert_eq!(e, embedding("m", "hello", 384));
        assert_ne!(e, embedding("m", "hello!", 384));
    }

    #[test]
    fn dimensions_cut_and_renormalise_or_are_ignored() {
        let e = embedding("m", "hello", 8);
        let cut = apply_dimensions(&e, 3);
        assert_eq!(cut.len(), 3);
        assert!((cut.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-4);
        assert_eq!(apply_dimensions(&e, 8).len(), 8);
        assert_eq!(apply_dimensions(&e, 0).len(), 8);
        assert_eq!(apply_dimensions(&e, -2).len(), 8);
    }
}
