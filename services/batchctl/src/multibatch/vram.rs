//! Total VRAM in use, from the metrics service's `GET /v1/gpus` (so GPUs of workers on other
//! machines count): single readings around each batch, and a timeline sampled in the background.

use super::results::VramPoint;
use crate::{Client, ClientError};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Most timeline points kept: a day at one a second. Past it, every other point is dropped.
const MAX_POINTS: usize = 86_400;

/// The sum of every GPU's latest reading, dated by the newest of them; `None` when no GPU
/// reported any.
pub async fn read(metrics: &Client) -> Result<Option<VramPoint>, ClientError> {
    let gpus = metrics.gpus().await?;
    let t = gpus.iter().map(|g| g.at).max();
    Ok(t.map(|t| VramPoint { t, used_bytes: gpus.iter().map(|g| g.memory_used_bytes).sum() }))
}

/// A reading taken at or after `at_ms` (Unix ms), polling every `every` until `within` has
/// passed; the latest reading if none came in time. Errors read as no reading.
pub async fn read_after(
    metrics: &Client,
    at_ms: Option<i64>,
    every: Duration,
    within: Duration,
) -> Option<VramPoint> {
    let deadline = Instant::now() + within;
    loop {
        let reading = read(metrics).await.ok().flatten();
        let fresh = match (reading, at_ms) {
            (Some(r), Some(at)) => r.t >= at,
            _ => true,
        };
        if fresh || Instant::now() >= deadline {
            return reading;
        }
        tokio::time::sleep(every).await;
    }
}

/// Polls `GET /v1/gpus` in the background and keeps each new reading.
pub struct Sampler {
    stop: CancellationToken,
    task: JoinHandle<Vec<VramPoint>>,
}

impl Sampler {
    pub fn start(metrics: Client, every: Duration) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(sample(metrics, every, stop.clone()));
        Self { stop, task }
    }

    /// Stops sampling and returns the timeline.
    pub async fn finish(self) -> Vec<VramPoint> {
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}

async fn sample(metrics: Client, every: Duration, stop: CancellationToken) -> Vec<VramPoint> {
    let mut points: Vec<VramPoint> = Vec::new();
    loop {
        let reading = tokio::select! {
            () = stop.cancelled() => return points,
            reading = read(&metrics) => reading,
        };
        // A failed poll is a gap in the chart, not a reason to stop the run.
        if let Ok(Some(point)) = reading {
            push(&mut points, point);
        }
        tokio::select! {
            () = stop.cancelled() => return points,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// Appends a reading unless it is the one already kept last.
fn push(points: &mut Vec<VramPoint>, point: VramPoint) {
    if points.last().is_some_and(|last| last.t >= point.t) {
        return;
    }
    if points.len() >= MAX_POINTS {
        let mut i = 0;
        points.retain(|_| {
            i += 1;
            i % 2 == 1
        });
    }
    points.push(point);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_readings_are_kept_once() {
        let mut points = Vec::new();
        push(&mut points, VramPoint { t: 1, used_bytes: 5 });
        push(&mut points, VramPoint { t: 1, used_bytes: 5 });
        push(&mut points, VramPoint { t: 2, used_bytes: 6 });
        assert_eq!(points.iter().map(|p| p.t).collect::<Vec<_>>(), [1, 2]);
    }
}
