//! `OLLAMA_KEEP_ALIVE` as Ollama reads `keep_alive` (its `api.Duration`): a JSON number is
//! seconds (fractions allowed, negative keeps the model loaded for good); a string must be a Go
//! duration (`5m`, `1h30m`, `1.5s`), which needs a unit, so `"300"` or `"1.5"` sent as strings
//! are refused with a 400 on every request. Plain numbers are therefore sent as numbers, and
//! anything else is checked here, at start, rather than by the first request.

use super::BackendError;
use serde_json::Value;

/// The `keep_alive` value to send, if any.
pub(crate) fn parse(text: &str) -> Result<Option<Value>, BackendError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(Some(Value::from(seconds)));
    }
    if let Ok(seconds) = text.parse::<f64>()
        && seconds.is_finite()
        && let Some(number) = serde_json::Number::from_f64(seconds)
    {
        return Ok(Some(Value::Number(number)));
    }
    if is_go_duration(text) {
        return Ok(Some(Value::String(text.to_owned())));
    }
    Err(BackendError::Config(format!(
        "OLLAMA_KEEP_ALIVE '{text}' is not a duration Ollama accepts: give seconds (300, 1.5, \
         -1 for ever) or a duration with a unit (5m, 1h30m, 90s)"
    )))
}

/// Whether `value` makes Ollama unload the model as soon as each request is done.
pub(crate) fn unloads(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.as_f64() == Some(0.0),
        // A duration is zero when each of its numbers is.
        Value::String(s) => {
            let mut digits = s.chars().filter(char::is_ascii_digit).peekable();
            digits.peek().is_some() && digits.all(|c| c == '0')
        }
        _ => false,
    }
}

/// Go's `time.ParseDuration` grammar: an optional sign, then one or more `<number><unit>`
/// (units ns, us, µs, μs, ms, s, m, h), or a lone `0`.
fn is_go_duration(text: &str) -> bool {
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    if body == "0" {
        return true;
    }
    let mut rest = body;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let number_len =
            rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return false;
        }
        rest = &rest[number_len..];
        let unit = ["ns", "us", "µs", "μs", "ms", "s", "m", "h"]
            .into_iter()
            .filter(|u| rest.starts_with(u))
            .max_by_key(|u| u.len());
        let Some(unit) = unit else { return false };
        rest = &rest[unit.len()..];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_go_as_numbers_and_durations_as_strings() {
        assert_eq!(parse("-1").unwrap(), Some(json!(-1)));
        assert_eq!(parse("300").unwrap(), Some(json!(300)));
        assert_eq!(parse("1.5").unwrap(), Some(json!(1.5)));
        assert_eq!(parse("300.0").unwrap(), Some(json!(300.0)));
        assert_eq!(parse("0").unwrap(), Some(json!(0)));
        for duration in ["5m", "1h30m", "1.5s", "300ms", "-1m", "2h45m30.5s", "10µs"] {
            assert_eq!(parse(duration).unwrap(), Some(json!(duration)), "{duration}");
        }
        assert_eq!(parse("").unwrap(), None);
    }

    #[test]
    fn what_ollama_would_refuse_fails_at_start() {
        for bad in ["forever", "5d", "m", "1.2.3s", "5 m", "-", ".s", "infinity", "NaN"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn zero_in_any_form_unloads() {
        for zero in ["0", "0s", "0m", "0.0s", "+0", "0.0"] {
            let value = parse(zero).unwrap().unwrap();
            assert!(unloads(&value), "{zero}");
        }
        for kept in ["-1", "5m", "300", "0.5s", "10ms"] {
            let value = parse(kept).unwrap().unwrap();
            assert!(!unloads(&value), "{kept}");
        }
    }
}
