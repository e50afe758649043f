//! The pure statistics behind the reports: means, spread, variance as the test plan computes it,
//! and the least-squares trend of a series.

/// Arithmetic mean; `None` for no values.
pub fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some(values.iter().sum::<f64>() / values.len() as f64)
}

/// Sample standard deviation (n − 1 in the denominator, like Python's `statistics.stdev`);
/// `None` below two values.
pub fn std_dev(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let m = mean(values)?;
    let squares: f64 = values.iter().map(|v| (v - m).powi(2)).sum();
    Some((squares / (values.len() - 1) as f64).sqrt())
}

/// Smallest and largest value; `None` for no values.
pub fn min_max(values: &[f64]) -> Option<(f64, f64)> {
    let first = *values.first()?;
    Some(values.iter().fold((first, first), |(lo, hi), &v| (lo.min(v), hi.max(v))))
}

/// Spread of the values relative to the largest, in percent: `(max − min) / max × 100`.
///
/// This is the figure the multi-batch test plan prints as "Variance": it gives exactly its
/// examples (0.20/0.19/0.20 req/s → 5.0 %, 0.20/0.18/0.16 → 20 %), which dividing by the mean
/// would not (5.08 %, 22.2 %). `None` for no values or a largest value of 0.
pub fn variance_pct(values: &[f64]) -> Option<f64> {
    let (lo, hi) = min_max(values)?;
    if hi <= 0.0 {
        return None;
    }
    Some((hi - lo) / hi * 100.0)
}

/// Least-squares slope of `y` over `x`; `None` below two points or when every `x` is equal.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    Some(sxy / sxx)
}

/// The `p` quantile (0..=1) of ascending `sorted` values, interpolated linearly at position
/// `p × (n − 1)` exactly as Postgres' `percentile_cont` does; `None` for no values.
pub fn percentile_cont(sorted: &[f64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let position = p.clamp(0.0, 1.0) * last as f64;
    let (lo, hi) = (position.floor(), position.ceil());
    let first = *sorted.get(lo as usize)?;
    if lo == hi {
        return Some(first);
    }
    let second = *sorted.get(hi as usize)?;
    // Postgres' float8_lerp: lo + (hi - lo) * proportion, in the same order of operations.
    Some(first + (second - first) * (position - lo))
}

/// `part / whole × 100`, `None` when `whole` is 0.
pub fn pct(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64 * 100.0)
}

/// `a / b`, `None` when `b` is not positive.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn test_plan_consistent_rates_vary_by_five_percent() {
        let rates = [0.20, 0.19, 0.20];
        assert!(close(variance_pct(&rates).unwrap(), 5.0));
        assert_eq!(min_max(&rates), Some((0.19, 0.20)));
        assert!(close(mean(&rates).unwrap(), 0.59 / 3.0));
    }

    #[test]
    fn test_plan_degrading_rates_vary_by_twenty_percent() {
        assert!(close(variance_pct(&[0.20, 0.18, 0.16]).unwrap(), 20.0));
    }

    #[test]
    fn std_dev_is_the_sample_one() {
        // mean 5, squared deviations 9+1+1+9 = 20, / (4 - 1), sqrt.
        assert!(close(std_dev(&[2.0, 4.0, 6.0, 8.0]).unwrap(), (20.0f64 / 3.0).sqrt()));
        // 0.20/0.19/0.20: deviations +1/300, -2/300, +1/300; squares sum 1/15000, / 2 = 0.0001/3.
        assert!(close(std_dev(&[0.20, 0.19, 0.20]).unwrap(), (0.0001f64 / 3.0).sqrt()));
        assert_eq!(std_dev(&[1.0]), None);
    }

    #[test]
    fn test_plan_leak_trend_is_fifteen_hundredths_per_batch() {
        // After-batch VRAM 10.50, 10.65, 10.80 GB at batch index 0, 1, 2.
        let s = slope(&[(0.0, 10.50), (1.0, 10.65), (2.0, 10.80)]).unwrap();
        assert!(close(s, 0.15), "{s}");
        assert!(close(slope(&[(0.0, 10.35), (1.0, 10.35), (2.0, 10.35)]).unwrap(), 0.0));
        assert_eq!(slope(&[(0.0, 1.0)]), None);
        assert_eq!(slope(&[(1.0, 1.0), (1.0, 2.0)]), None);
    }

    #[test]
    fn percentile_cont_interpolates_like_postgres() {
        // 100, 200, ..., 1000: position 0.95 × 9 = 8.55 → 900 + 0.55 × 100.
        let latencies: Vec<f64> = (1..=10).map(|i| f64::from(i) * 100.0).collect();
        assert!(close(percentile_cont(&latencies, 0.5).unwrap(), 550.0));
        assert!(close(percentile_cont(&latencies, 0.95).unwrap(), 955.0));
        assert!(close(percentile_cont(&latencies, 0.99).unwrap(), 991.0));
        assert_eq!(percentile_cont(&latencies, 0.0), Some(100.0));
        assert_eq!(percentile_cont(&latencies, 1.0), Some(1000.0));
        assert_eq!(percentile_cont(&[7.0], 0.95), Some(7.0));
        assert_eq!(percentile_cont(&[], 0.5), None);
    }

    #[test]
    fn empty_and_zero_inputs_give_no_figure() {
        assert_eq!(mean(&[]), None);
        assert_eq!(variance_pct(&[]), None);
        assert_eq!(variance_pct(&[0.0, 0.0]), None);
        assert_eq!(pct(1, 0), None);
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(pct(3, 4), Some(75.0));
    }
}
