//! A batch's life as the bench sees it: the batch and the simulator polled every few
//! milliseconds, and the moments each stage was first seen done.
//!
//! The batch object's timestamps are whole seconds, too coarse at thousands of requests per
//! second, so each moment here is when a poll first saw it (an error of one poll interval).

use crate::api::{Gateway, sim_state};
use anyhow::bail;
use nightshift_shared::openai::{Batch, BatchStatus};
use std::time::{Duration, Instant};

/// How often the batch (and the simulator) is polled.
pub const POLL_EVERY: Duration = Duration::from_millis(20);

/// One poll.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Since the batch was created.
    pub at: Duration,
    pub status: BatchStatus,
    /// Requests with a recorded result (completed + failed).
    pub counted: u64,
    /// Requests the simulator answered since the batch was created, if it was polled.
    pub answered: Option<u64>,
    /// Requests holding a simulator slot now.
    pub in_flight: Option<u64>,
}

/// When each stage was first seen over, since the batch was created.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Moments {
    /// Validation done and chunks recorded: the batch went `in_progress`.
    pub in_progress: Option<Duration>,
    /// The first result was recorded.
    pub first_result: Option<Duration>,
    /// The backend had answered every request.
    pub backend_done: Option<Duration>,
    /// Every request had a recorded result.
    pub all_counted: Option<Duration>,
    /// The batch was `completed` (its output file written).
    pub completed: Option<Duration>,
}

impl Moments {
    pub fn from_samples(samples: &[Sample], total: u64) -> Self {
        let first = |f: &dyn Fn(&Sample) -> bool| samples.iter().find(|s| f(s)).map(|s| s.at);
        let past = |s: &Sample, status: BatchStatus| status_rank(s.status) >= status_rank(status);
        Self {
            in_progress: first(&|s| past(s, BatchStatus::InProgress)),
            first_result: first(&|s| s.counted > 0 || past(s, BatchStatus::Finalizing)),
            backend_done: first(&|s| s.answered.is_some_and(|a| a >= total)),
            all_counted: first(&|s| s.counted >= total || past(s, BatchStatus::Finalizing)),
            completed: first(&|s| s.status == BatchStatus::Completed),
        }
    }

    /// The longest the recorded count stood still while the batch was in progress: how long
    /// results can wait for the collector.
    pub fn longest_count_stall(samples: &[Sample]) -> Duration {
        let mut longest = Duration::ZERO;
        let mut since: Option<(u64, Duration)> = None;
        for s in samples {
            match since {
                Some((count, at)) if count == s.counted => {
                    if s.status == BatchStatus::InProgress {
                        longest = longest.max(s.at - at);
                    }
                }
                _ => since = Some((s.counted, s.at)),
            }
        }
        longest
    }

    /// Mean simulator slots busy between `in_progress` and `backend_done`.
    pub fn mean_busy_slots(&self, samples: &[Sample]) -> Option<f64> {
        let (from, to) = (self.in_progress?, self.backend_done?);
        let busy: Vec<f64> = samples
            .iter()
            .filter(|s| s.at >= from && s.at < to)
            .filter_map(|s| s.in_flight.map(|n| n as f64))
            .collect();
        crate::stats::mean(&busy)
    }
}

/// Order of the statuses a successful batch goes through.
fn status_rank(status: BatchStatus) -> u8 {
    match status {
        BatchStatus::Validating => 0,
        BatchStatus::InProgress => 1,
        BatchStatus::Finalizing => 2,
        BatchStatus::Completed => 3,
        _ => 4,
    }
}

/// The samples as CSV, for a closer look at a run.
pub fn csv(samples: &[Sample]) -> String {
    let mut out = "ms,status,counted,answered,in_flight\n".to_owned();
    for s in samples {
        let n = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        out.push_str(&format!(
            "{},{},{},{},{}\n",
            s.at.as_millis(),
            s.status.as_str(),
            s.counted,
            n(s.answered),
            n(s.in_flight)
        ));
    }
    out
}

/// Polls `batch_id` (and the simulator, when given with its answered count at creation) until it
/// ends or `stop` holds, returning every sample and the last batch object.
pub async fn watch(
    gateway: &Gateway,
    sim: Option<(&reqwest::Client, &str, u64)>,
    batch_id: &str,
    created: Instant,
    limit: Duration,
    stop: impl Fn(&Batch) -> bool,
) -> anyhow::Result<(Vec<Sample>, Batch)> {
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let sim_poll = async {
            match sim {
                Some((http, url, base)) => {
                    sim_state(http, url).await.ok().map(|s| (s.counters.completed - base, s))
                }
                None => None,
            }
        };
        let (batch, sim) = tokio::join!(gateway.batch(batch_id), sim_poll);
        let batch = batch?;
        let at = created.elapsed();
        samples.push(Sample {
            at,
            status: batch.status,
            counted: batch.request_counts.completed + batch.request_counts.failed,
            answered: sim.map(|(n, _)| n),
            in_flight: sim.map(|(_, s)| s.in_flight),
        });
        if batch.status.is_terminal() || stop(&batch) {
            return Ok((samples, batch));
        }
        if at > limit {
            bail!(
                "batch {batch_id} still {} after {limit:?} ({} of {} counted)",
                batch.status.as_str(),
                batch.request_counts.completed + batch.request_counts.failed,
                batch.request_counts.total
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ms: u64, status: BatchStatus, counted: u64, answered: u64, busy: u64) -> Sample {
        Sample {
            at: Duration::from_millis(ms),
            status,
            counted,
            answered: Some(answered),
            in_flight: Some(busy),
        }
    }

    #[test]
    fn moments_are_the_first_poll_that_saw_each_stage_over() {
        use BatchStatus::*;
        let samples = [
            s(0, Validating, 0, 0, 0),
            s(20, InProgress, 0, 0, 0),
            s(40, InProgress, 0, 30, 8),
            s(60, InProgress, 50, 90, 6),
            s(80, InProgress, 90, 100, 0),
            s(100, Finalizing, 100, 100, 0),
            s(120, Completed, 100, 100, 0),
        ];
        let m = Moments::from_samples(&samples, 100);
        let ms = |n| Some(Duration::from_millis(n));
        assert_eq!(m.in_progress, ms(20));
        assert_eq!(m.first_result, ms(60));
        assert_eq!(m.backend_done, ms(80));
        assert_eq!(m.all_counted, ms(100));
        assert_eq!(m.completed, ms(120));
        // No result recorded from 0 to 40 ms, the longest the count stood still.
        assert_eq!(Moments::longest_count_stall(&samples), Duration::from_millis(40));
        // Busy slots sampled at 20, 40 and 60 ms.
        assert_eq!(m.mean_busy_slots(&samples), Some((0.0 + 8.0 + 6.0) / 3.0));
    }

    #[test]
    fn a_stage_skipped_between_polls_counts_as_over_at_the_next_one() {
        use BatchStatus::*;
        let samples = [s(0, Validating, 0, 0, 0), s(20, Completed, 0, 5, 0)];
        let m = Moments::from_samples(&samples, 5);
        let at = Some(Duration::from_millis(20));
        assert_eq!((m.in_progress, m.first_result, m.all_counted, m.completed), (at, at, at, at));
    }
}
