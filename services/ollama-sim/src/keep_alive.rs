//! Ollama's `keep_alive`: how long a model stays loaded after its last request.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How long a model stays loaded once no request is using it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepAlive {
    /// Any negative value: never unload.
    Forever,
    /// Zero: unload as soon as the last request using the model finishes.
    UnloadNow,
    /// Unload after being idle this long.
    Idle(Duration),
}

impl Default for KeepAlive {
    /// Ollama's default (`OLLAMA_KEEP_ALIVE` unset) is five minutes.
    fn default() -> Self {
        Self::Idle(Duration::from_secs(300))
    }
}

/// A `keep_alive` Ollama would refuse, with the text its JSON decoding fails with.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidKeepAlive(pub String);

impl KeepAlive {
    /// Seconds as a number in a flag or config patch: negative keeps forever, zero unloads.
    pub fn from_secs_f64(secs: f64) -> Result<Self, InvalidKeepAlive> {
        if !secs.is_finite() {
            return Err(InvalidKeepAlive(format!("invalid keep_alive {secs}")));
        }
        Ok(if secs < 0.0 {
            Self::Forever
        } else if secs == 0.0 {
            Self::UnloadNow
        } else {
            // Beyond what a Duration holds is "forever" for any practical purpose.
            Duration::try_from_secs_f64(secs).map_or(Self::Forever, Self::Idle)
        })
    }

    /// Signed nanoseconds as Ollama's scheduler reads them: negative is forever (Ollama
    /// stores `MaxInt64`), zero unloads once the model is idle.
    fn from_nanos(nanos: i64) -> Self {
        match u64::try_from(nanos) {
            Err(_) => Self::Forever,
            Ok(0) => Self::UnloadNow,
            Ok(n) => Self::Idle(Duration::from_nanos(n)),
        }
    }

    /// A request's `keep_alive` exactly as Ollama's `api.Duration.UnmarshalJSON` reads it:
    /// a number is seconds (fractions allowed, negative forever), a string goes through
    /// Go's `time.ParseDuration` (so `"300"` has no unit and fails), `null` is "not given"
    /// (the model keeps its keep_alive), any other type fails.
    pub fn from_request(
        value: Option<&serde_json::Value>,
    ) -> Result<Option<Self>, InvalidKeepAlive> {
        use serde_json::Value;
        let Some(value) = value else { return Ok(None) };
        let parsed = match value {
            Value::Null => return Ok(None),
            Value::Number(n) => {
                let secs = n.as_f64().unwrap_or(0.0);
                if secs < 0.0 {
                    Self::Forever
                } else {
                    // Go converts seconds * 1e9 to an integer Duration, so a value under a
                    // nanosecond is 0 and unloads. Past Go's int64 range the conversion is
                    // platform-defined; the sim keeps such a model forever.
                    let nanos = secs * 1e9;
                    if nanos >= i64::MAX as f64 {
                        Self::Forever
                    } else {
                        Self::from_nanos(nanos as i64)
                    }
                }
            }
            Value::String(s) => {
                Self::from_nanos(crate::golang::parse_duration(s).map_err(InvalidKeepAlive)?)
            }
            Value::Bool(_) => return Err(unsupported("bool")),
            Value::Array(_) => return Err(unsupported("[]interface {}")),
            Value::Object(_) => return Err(unsupported("map[string]interface {}")),
        };
        Ok(Some(parsed))
    }

    /// Reads a configured keep_alive (flag, env, `/sim/config` patch): a number of seconds,
    /// or a string as [`FromStr`] reads it.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, InvalidKeepAlive> {
        match value {
            serde_json::Value::Number(n) => Self::from_secs_f64(n.as_f64().unwrap_or(0.0)),
            serde_json::Value::String(s) => s.parse(),
            other => Err(InvalidKeepAlive(format!("invalid keep_alive {other}"))),
        }
    }
}

/// Go's error for a JSON type `api.Duration` does not take (its `reflect.TypeOf` name).
fn unsupported(go_type: &str) -> InvalidKeepAlive {
    InvalidKeepAlive(format!("Unsupported type: '{go_type}'"))
}

impl FromStr for KeepAlive {
    type Err = InvalidKeepAlive;

    /// The configured default, read like `OLLAMA_KEEP_ALIVE`: a Go duration ("5m",
    /// "1h30m", "-1m", "500ms") or, failing that, a number of seconds ("-1", "0", "300").
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        match crate::golang::parse_duration(t) {
            Ok(nanos) => Ok(Self::from_nanos(nanos)),
            Err(e) => {
                t.parse::<f64>().map_err(|_| InvalidKeepAlive(e)).and_then(Self::from_secs_f64)
            }
        }
    }
}

impl fmt::Display for KeepAlive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Forever => f.write_str("-1"),
            Self::UnloadNow => f.write_str("0"),
            Self::Idle(d) if d.subsec_nanos() == 0 => write!(f, "{}s", d.as_secs()),
            Self::Idle(d) if d.subsec_nanos() % 1_000_000 == 0 => write!(f, "{}ms", d.as_millis()),
            Self::Idle(d) => write!(f, "{}ns", d.as_nanos()),
        }
    }
}

impl Serialize for KeepAlive {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KeepAlive {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Self::from_json(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_and_numbers_parse_like_ollama() {
        assert_eq!("5m".parse::<KeepAlive>().unwrap(), KeepAlive::Idle(Duration::from_secs(300)));
        assert_eq!(
            "1h30m".parse::<KeepAlive>().unwrap(),
            KeepAlive::Idle(Duration::from_secs(5400))
        );
        assert_eq!(
            "500ms".parse::<KeepAlive>().unwrap(),
            KeepAlive::Idle(Duration::from_millis(500))
        );
        assert_eq!("-1".parse::<KeepAlive>().unwrap(), KeepAlive::Forever);
        assert_eq!("-1m".parse::<KeepAlive>().unwrap(), KeepAlive::Forever);
        assert_eq!("0".parse::<KeepAlive>().unwrap(), KeepAlive::UnloadNow);
        assert_eq!("0s".parse::<KeepAlive>().unwrap(), KeepAlive::UnloadNow);
        assert_eq!(KeepAlive::from_json(&serde_json::json!(-1)).unwrap(), KeepAlive::Forever);
        assert_eq!(
            KeepAlive::from_json(&serde_json::json!(30)).unwrap(),
            KeepAlive::Idle(Duration::from_secs(30))
        );
        assert!("5 minutes".parse::<KeepAlive>().is_err());
        assert!("m".parse::<KeepAlive>().is_err());
        assert!(KeepAlive::from_json(&serde_json::json!(true)).is_err());
    }

    #[test]
    fn display_round_trips() {
        for k in [
            KeepAlive::Forever,
            KeepAlive::UnloadNow,
            KeepAlive::Idle(Duration::from_millis(1500)),
            KeepAlive::default(),
        ] {
            assert_eq!(k.to_string().parse::<KeepAlive>().unwrap(), k);
        }
    }
}
