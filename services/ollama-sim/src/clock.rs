//! RFC 3339 timestamps as Ollama writes them (Go's RFC3339Nano), without a date crate.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Formats a wall-clock time as `2024-06-04T14:38:31.83753Z` (UTC, trailing zeros trimmed).
pub fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    let nanos = since.subsec_nanos();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// The wall-clock time of a monotonic instant (past or future), for `expires_at`.
pub fn wall_time(at: Instant) -> SystemTime {
    let now_mono = Instant::now();
    let now = SystemTime::now();
    if at >= now_mono {
        now.checked_add(at - now_mono).unwrap_or(now)
    } else {
        now.checked_sub(now_mono - at).unwrap_or(now)
    }
}

/// What Ollama reports as `expires_at` for a model kept forever: now plus Go's
/// maximum duration (about 292 years).
pub fn forever() -> SystemTime {
    let now = SystemTime::now();
    now.checked_add(Duration::from_nanos(i64::MAX as u64)).unwrap_or(now)
}

/// Unix seconds, for the OpenAI `created` field.
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::new(1_691_176_965, 499_127_000);
        assert_eq!(rfc3339(t), "2023-08-04T19:22:45.499127Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
        assert!(rfc3339(forever()).starts_with("23"));
    }
}
