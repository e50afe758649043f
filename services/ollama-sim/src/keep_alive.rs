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

/// A `keep_alive` value that is neither a number nor a Go duration string.
#[derive(Debug, thiserror::Error)]
#[error("time: invalid duration \"{0}\"")]
pub struct InvalidKeepAlive(pub String);

impl KeepAlive {
    /// Seconds, as Ollama reads a JSON number: negative keeps forever, zero unloads.
    pub fn from_secs_f64(secs: f64) -> Result<Self, InvalidKeepAlive> {
        if !secs.is_finite() {
            return Err(InvalidKeepAlive(secs.to_string()));
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

    /// Reads a request's `keep_alive` JSON value (number of seconds or duration string).
    pub fn from_json(value: &serde_json::Value) -> Result<Self, InvalidKeepAlive> {
        match value {
            serde_json::Value::Number(n) => {
                Self::from_secs_f64(n.as_f64().ok_or_else(|| InvalidKeepAlive(n.to_string()))?)
            }
            serde_json::Value::String(s) => s.parse(),
            other => Err(InvalidKeepAlive(other.to_string())),
        }
    }
}

impl FromStr for KeepAlive {
    type Err = InvalidKeepAlive;

    /// Accepts Go durations ("5m", "1h30m", "-1m", "500ms") and, more leniently than
    /// Ollama, unit-less numbers of seconds ("-1", "0", "300") since clients send those.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if let Ok(secs) = t.parse::<f64>() {
            return Self::from_secs_f64(secs);
        }
        let (negative, nanos) = parse_go_duration(t).ok_or_else(|| InvalidKeepAlive(s.into()))?;
        Ok(if negative && nanos > 0 {
            Self::Forever
        } else if nanos == 0 {
            Self::UnloadNow
        } else {
            Self::Idle(Duration::from_nanos(nanos))
        })
    }
}

/// Parses Go's `time.ParseDuration` syntax: an optional sign, then one or more
/// `<decimal><unit>` pairs. Returns the sign and the magnitude in nanoseconds.
fn parse_go_duration(s: &str) -> Option<(bool, u64)> {
    let (negative, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    // Saturating float-to-int cast is what we want: huge values mean "practically forever".
    Some((negative, total as u64))
}

impl fmt::Display for KeepAlive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Forever => f.write_str("-1"),
            Self::UnloadNow => f.write_str("0"),
            Self::Idle(d) if d.subsec_nanos() == 0 => write!(f, "{}s", d.as_secs()),
            Self::Idle(d) => write!(f, "{}ms", d.as_millis()),
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
