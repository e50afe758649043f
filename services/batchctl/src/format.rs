//! How batches, durations and times read on the terminal.

use nightshift_shared::openai::{Batch, BatchStatus};
use std::time::Duration;

/// How many of a failed batch's errors the final report lists.
const MAX_ERRORS_SHOWN: usize = 20;

/// Seconds since the Unix epoch, as the gateway's timestamps are.
pub use nightshift_shared::clock::unix_secs as now_unix;

/// Requests that are finished one way or the other.
pub fn processed(batch: &Batch) -> u64 {
    batch.request_counts.completed + batch.request_counts.failed
}

/// From creation to the end, or to `now` while the batch runs.
pub fn elapsed(batch: &Batch, now: i64) -> Duration {
    let end = match batch.status {
        BatchStatus::Completed => batch.completed_at,
        BatchStatus::Failed => batch.failed_at,
        BatchStatus::Cancelled => batch.cancelled_at,
        BatchStatus::Expired => batch.expired_at,
        _ => None,
    }
    .unwrap_or(now);
    Duration::from_secs(u64::try_from(end - batch.created_at).unwrap_or(0))
}

/// `batch_x  in_progress  1200/5000 completed  3 failed  elapsed 12m03s`
pub fn summary(batch: &Batch, now: i64) -> String {
    let c = &batch.request_counts;
    format!(
        "{}  {}  {}/{} completed  {} failed  elapsed {}",
        batch.id,
        batch.status.as_str(),
        c.completed,
        c.total,
        c.failed,
        duration(elapsed(batch, now)),
    )
}

/// What `wait` prints once a batch has ended: the summary, then what to do next.
pub fn final_report(batch: &Batch, now: i64) -> String {
    let mut out = summary(batch, now);
    let secs = elapsed(batch, now).as_secs_f64();
    if secs > 0.0 && processed(batch) > 0 {
        out.push_str(&format!("  ({})", rate(processed(batch) as f64 / secs)));
    }
    if let Some(errors) = &batch.errors {
        for e in errors.data.iter().take(MAX_ERRORS_SHOWN) {
            match e.line {
                Some(line) => out.push_str(&format!("\n  line {line}: {} ({})", e.message, e.code)),
                None => out.push_str(&format!("\n  {} ({})", e.message, e.code)),
            }
        }
        if errors.data.len() > MAX_ERRORS_SHOWN {
            out.push_str(&format!("\n  ... and {} more", errors.data.len() - MAX_ERRORS_SHOWN));
        }
    }
    if batch.output_file_id.is_some() || batch.error_file_id.is_some() {
        out.push_str(&format!("\ndownload the results with: batchctl download {}", batch.id));
    }
    out
}

/// `1h02m03s`, `4m05s`, `12s`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// `2.07 req/s`, or per minute when slow (a batch on one small GPU may do 0.2 req/s).
pub fn rate(per_sec: f64) -> String {
    if per_sec >= 1.0 {
        format!("{per_sec:.2} req/s")
    } else {
        format!("{:.1} req/min", per_sec * 60.0)
    }
}

/// `2025-10-27 14:03:09` in UTC.
pub fn utc(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// `2025-10-27T14:03:09Z`.
pub fn iso8601(unix: i64) -> String {
    utc(unix).replacen(' ', "T", 1) + "Z"
}

/// `20251027_140309` (UTC), for file names that sort by time.
pub fn file_stamp(unix: i64) -> String {
    utc(unix).replace(['-', ':'], "").replacen(' ', "_", 1)
}

/// `15,000`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_compactly() {
        assert_eq!(duration(Duration::from_secs(12)), "12s");
        assert_eq!(duration(Duration::from_secs(245)), "4m05s");
        assert_eq!(duration(Duration::from_secs(3723)), "1h02m03s");
    }

    #[test]
    fn slow_rates_read_per_minute() {
        assert_eq!(rate(2.071), "2.07 req/s");
        assert_eq!(rate(0.2), "12.0 req/min");
    }

    #[test]
    fn stamps_and_counts_read_as_the_test_plan_writes_them() {
        assert_eq!(iso8601(1_761_573_789), "2025-10-27T14:03:09Z");
        assert_eq!(file_stamp(1_761_573_789), "20251027_140309");
        assert_eq!(thousands(15_000), "15,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn utc_times_match_the_calendar() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_761_573_789), "2025-10-27 14:03:09");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
    }
}
