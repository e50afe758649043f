//! Wall-clock time as every service stores and sends it: Unix milliseconds (measurements, events)
//! and Unix seconds (the OpenAI objects' timestamps).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 on a clock set before it).
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Seconds since the Unix epoch (0 on a clock set before it).
pub fn unix_secs() -> i64 {
    unix_ms() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_milliseconds_agree() {
        let (ms, secs) = (unix_ms(), unix_secs());
        assert!(ms > 1_600_000_000_000, "{ms}");
        assert!((secs - ms / 1000).abs() <= 1);
    }
}
