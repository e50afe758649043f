//! The arithmetic behind the figures, computed the way the test plan computes it.

use std::time::Duration;

/// Requests per second.
pub fn rate(requests: u64, elapsed: Duration) -> Option<f64> {
    let secs = elapsed.as_secs_f64();
    (secs > 0.0).then(|| requests as f64 / secs)
}

pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The test plan's throughput variance, `(max − min) / max × 100` (0.20/0.19/0.20 → 5.0).
pub fn variance_pct(values: &[f64]) -> Option<f64> {
    let max = values.iter().copied().reduce(f64::max)?;
    let min = values.iter().copied().reduce(f64::min)?;
    (max > 0.0).then(|| (max - min) / max * 100.0)
}

/// Change from the first value to the last, in % of the first.
pub fn drift_pct(values: &[f64]) -> Option<f64> {
    let (first, last) = (values.first()?, values.last()?);
    (*first > 0.0).then(|| (last - first) / first * 100.0)
}

/// Megabytes (10^6 bytes) per second.
pub fn mb_per_sec(bytes: u64, elapsed: Duration) -> Option<f64> {
    rate(bytes, elapsed).map(|b| b / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn variance_matches_the_test_plans_example() {
        assert!(close(variance_pct(&[0.20, 0.19, 0.20]), 5.0));
        assert_eq!(variance_pct(&[]), None);
        assert_eq!(variance_pct(&[0.0, 0.0]), None);
    }

    #[test]
    fn rates_drift_and_means() {
        assert!(close(rate(500, Duration::from_millis(250)), 2000.0));
        assert_eq!(rate(5, Duration::ZERO), None);
        assert!(close(drift_pct(&[100.0, 120.0, 101.0]), 1.0));
        assert!(close(mean(&[1.0, 2.0, 6.0]), 3.0));
        assert!(close(mb_per_sec(3_000_000, Duration::from_secs(2)), 1.5));
    }
}
