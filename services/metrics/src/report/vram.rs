//! A batch's VRAM per GPU: the reading before it started, after it ended, and its peak between.
//!
//! - before: the latest reading at or before the start (within the look-back window), else the
//!   earliest reading during the batch (the first chunk's start sample);
//! - after: the earliest reading at or after the end (within the look-ahead window), else the
//!   latest reading during the batch (the last chunk's end sample);
//! - peak: the largest reading during the batch.

use crate::store::read::GpuPoint;
use nightshift_shared::reports::{BatchVram, GpuVram};
use std::collections::{BTreeMap, BTreeSet};

/// Computes the VRAM figures of a batch that ran from `start` to `end` (`None`: still running)
/// from `points` sorted by time; `window` bounds how far outside the batch before/after are
/// looked for.
pub fn batch_vram(points: &[GpuPoint], start: i64, end: Option<i64>, window: i64) -> BatchVram {
    let mut by_gpu: BTreeMap<(&str, &str), Vec<&GpuPoint>> = BTreeMap::new();
    for p in points {
        by_gpu.entry((p.host.as_str(), p.gpu_uuid.as_str())).or_default().push(p);
    }
    let mut gpus = Vec::new();
    for ((host, gpu), mut series) in by_gpu {
        series.sort_by_key(|p| p.at);
        let during = |p: &&&GpuPoint| p.at >= start && end.is_none_or(|e| p.at <= e);
        let before = series
            .iter()
            .rev()
            .find(|p| p.at <= start && p.at >= start - window)
            .or_else(|| series.iter().find(during));
        let after = end.and_then(|e| {
            series
                .iter()
                .find(|p| p.at >= e && p.at <= e + window)
                .or_else(|| series.iter().rev().find(during))
        });
        let peak = series.iter().filter(during).map(|p| p.peak_bytes).max();
        if before.is_none() && after.is_none() && peak.is_none() {
            continue;
        }
        let Some(latest) = series.last() else { continue };
        gpus.push(GpuVram {
            host: host.to_owned(),
            gpu: gpu.to_owned(),
            name: latest.gpu_name.clone(),
            source: latest.source.clone(),
            before_bytes: before.map(|p| p.used_bytes),
            before_at: before.map(|p| p.at),
            after_bytes: after.map(|p| p.used_bytes),
            after_at: after.map(|p| p.at),
            delta_bytes: before.zip(after).map(|(b, a)| a.used_bytes - b.used_bytes),
            peak_bytes: peak,
            total_bytes: series.iter().rev().find_map(|p| p.total_bytes),
        });
    }
    let complete: Vec<&GpuVram> = gpus.iter().filter(|g| g.delta_bytes.is_some()).collect();
    let sum = |f: fn(&GpuVram) -> Option<i64>, of: &[&GpuVram]| -> Option<i64> {
        (!of.is_empty()).then(|| of.iter().filter_map(|g| f(g)).sum())
    };
    let peaks: Vec<&GpuVram> = gpus.iter().filter(|g| g.peak_bytes.is_some()).collect();
    let sources: BTreeSet<&str> = gpus.iter().map(|g| g.source.as_str()).collect();
    let source = match sources.len() {
        0 => None,
        1 => sources.first().map(|s| (*s).to_owned()),
        _ => Some("mixed".to_owned()),
    };
    BatchVram {
        source,
        before_bytes: sum(|g| g.before_bytes, &complete),
        after_bytes: sum(|g| g.after_bytes, &complete),
        delta_bytes: sum(|g| g.delta_bytes, &complete),
        peak_bytes: sum(|g| g.peak_bytes, &peaks),
        gpus,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(gpu: &str, at: i64, used: i64) -> GpuPoint {
        GpuPoint {
            host: "h".into(),
            gpu_uuid: gpu.into(),
            gpu_name: "GPU".into(),
            source: "nvml".into(),
            at,
            used_bytes: used,
            peak_bytes: used,
            total_bytes: Some(100),
        }
    }

    #[test]
    fn before_after_and_peak_come_from_around_and_during_the_batch() {
        let points = [
            point("g", 500, 1), // outside the look-back window
            point("g", 900, 10),
            point("g", 1000, 11),
            point("g", 1500, 30),
            point("g", 2000, 12),
            point("g", 2050, 13),
            point("g", 2300, 14),
        ];
        let v = batch_vram(&points, 1000, Some(2000), 200);
        let g = &v.gpus[0];
        assert_eq!((g.before_bytes, g.before_at), (Some(11), Some(1000)));
        assert_eq!((g.after_bytes, g.after_at), (Some(12), Some(2000)));
        assert_eq!(g.delta_bytes, Some(1));
        assert_eq!(g.peak_bytes, Some(30));
        assert_eq!((v.before_bytes, v.after_bytes, v.delta_bytes), (Some(11), Some(12), Some(1)));
        assert_eq!(v.source.as_deref(), Some("nvml"));
    }

    #[test]
    fn missing_outside_readings_fall_back_to_the_batchs_own() {
        let points = [point("g", 1100, 20), point("g", 1900, 25)];
        let v = batch_vram(&points, 1000, Some(2000), 50);
        assert_eq!(v.gpus[0].before_bytes, Some(20));
        assert_eq!(v.gpus[0].after_bytes, Some(25));
    }

    #[test]
    fn running_batch_has_no_after_and_no_reading_means_no_figures() {
        let v = batch_vram(&[point("g", 900, 5), point("g", 1200, 9)], 1000, None, 200);
        assert_eq!(v.gpus[0].after_bytes, None);
        assert_eq!(v.delta_bytes, None);
        assert_eq!(v.peak_bytes, Some(9));

        let none = batch_vram(&[], 1000, Some(2000), 200);
        assert!(none.gpus.is_empty());
        assert_eq!((none.source, none.before_bytes, none.peak_bytes), (None, None, None));
    }

    #[test]
    fn totals_sum_the_gpus() {
        let points = [
            point("a", 1000, 10),
            point("b", 1000, 20),
            point("a", 2000, 11),
            point("b", 2000, 22),
        ];
        let v = batch_vram(&points, 1000, Some(2000), 0);
        assert_eq!((v.before_bytes, v.after_bytes, v.delta_bytes), (Some(30), Some(33), Some(3)));
        assert_eq!(v.peak_bytes, Some(33));
    }
}
