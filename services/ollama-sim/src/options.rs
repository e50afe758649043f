//! A native request's `options` map, read as Ollama's `api.Options.FromMap` reads it: known
//! keys type-checked (a wrong type is a 500), unknown keys and `null` values skipped.

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::golang::quote;

/// The options the simulator acts on; the others are only type-checked.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Tokens to generate at most; negative means no cap (Ollama's -1 and -2).
    pub num_predict: Option<i64>,
    pub seed: Option<i64>,
    pub stop: Option<Vec<String>>,
    /// Context length: longer prompts are truncated to it.
    pub num_ctx: Option<i64>,
}

/// The Go type of an option's field, which decides what JSON it takes.
#[derive(Clone, Copy)]
enum Kind {
    /// `int`: any JSON number, truncated toward zero.
    Integer,
    /// `float32`: any JSON number.
    Float,
    /// `bool`, and `*bool` (use_mmap).
    Boolean,
    /// `[]string` (stop).
    Strings,
}

/// The json tags of `api.Options` and `api.Runner` at Ollama v0.33 with their Go types.
/// None is a plain `string`, so "must be of type string" cannot occur.
const KNOWN: &[(&str, Kind)] = &[
    ("num_ctx", Kind::Integer),
    ("num_batch", Kind::Integer),
    ("num_gpu", Kind::Integer),
    ("main_gpu", Kind::Integer),
    ("use_mmap", Kind::Boolean),
    ("num_thread", Kind::Integer),
    ("draft_num_predict", Kind::Integer),
    ("num_keep", Kind::Integer),
    ("seed", Kind::Integer),
    ("num_predict", Kind::Integer),
    ("top_k", Kind::Integer),
    ("top_p", Kind::Float),
    ("min_p", Kind::Float),
    ("typical_p", Kind::Float),
    ("repeat_last_n", Kind::Integer),
    ("temperature", Kind::Float),
    ("repeat_penalty", Kind::Float),
    ("presence_penalty", Kind::Float),
    ("frequency_penalty", Kind::Float),
    ("stop", Kind::Strings),
];

fn wrong_type(key: &str, what: &str) -> ApiError {
    ApiError::InvalidOption(format!("option {} must be {what}", quote(key)))
}

impl Options {
    /// Checks and reads `options`. Errors carry Ollama's text ("option \"temperature\"
    /// must be of type float32"); Ollama answers them with a 500 because they surface
    /// while it schedules the runner.
    pub fn from_map(map: Option<&Map<String, Value>>) -> Result<Self, ApiError> {
        let mut out = Self::default();
        for (key, value) in map.into_iter().flatten() {
            let Some(&(_, kind)) = KNOWN.iter().find(|(k, _)| k == key) else {
                continue;
            };
            match (kind, value) {
                (_, Value::Null) => {}
                (Kind::Integer, Value::Number(n)) => {
                    // Go decodes every JSON number as float64, then int64(t) truncates.
                    let v = n.as_i64().unwrap_or_else(|| n.as_f64().unwrap_or(0.0) as i64);
                    match key.as_str() {
                        "num_predict" => out.num_predict = Some(v),
                        "seed" => out.seed = Some(v),
                        "num_ctx" => out.num_ctx = Some(v),
                        _ => {}
                    }
                }
                (Kind::Integer, _) => return Err(wrong_type(key, "of type integer")),
                (Kind::Float, Value::Number(_)) | (Kind::Boolean, Value::Bool(_)) => {}
                (Kind::Float, _) => return Err(wrong_type(key, "of type float32")),
                (Kind::Boolean, _) => return Err(wrong_type(key, "of type boolean")),
                (Kind::Strings, Value::Array(items)) => {
                    let strings = items
                        .iter()
                        .map(|i| i.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| wrong_type(key, "of an array of strings"))?;
                    out.stop = Some(strings);
                }
                (Kind::Strings, _) => return Err(wrong_type(key, "of type array")),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: Value) -> Result<Options, String> {
        Options::from_map(v.as_object()).map_err(|e| e.to_string())
    }

    #[test]
    fn numbers_truncate_and_unknown_or_null_are_skipped() {
        let o = read(json!({"num_predict": 10.7, "seed": 3, "nope": "x", "temperature": null}))
            .unwrap();
        assert_eq!((o.num_predict, o.seed), (Some(10), Some(3)));
        assert_eq!(read(json!({"stop": ["a", "b"]})).unwrap().stop.unwrap(), ["a", "b"]);
    }

    #[test]
    fn wrong_types_fail_with_ollamas_texts() {
        assert_eq!(
            read(json!({"use_mmap": 1})).unwrap_err(),
            r#"option "use_mmap" must be of type boolean"#
        );
        assert_eq!(
            read(json!({"stop": "x"})).unwrap_err(),
            r#"option "stop" must be of type array"#
        );
        assert_eq!(
            read(json!({"stop": ["x", 1]})).unwrap_err(),
            r#"option "stop" must be of an array of strings"#
        );
    }
}
