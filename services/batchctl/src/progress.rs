//! Live progress of a running batch: a bar on a terminal, a line every few seconds otherwise.

use crate::format;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nightshift_shared::openai::{Batch, BatchStatus};
use std::collections::VecDeque;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How far back the recent rate looks: long enough to smooth over chunk-sized jumps in the counts.
pub const RATE_WINDOW: Duration = Duration::from_secs(300);
/// How often a progress line is printed when stdout is not a terminal.
pub const LINE_EVERY: Duration = Duration::from_secs(5);

const BAR_TEMPLATE: &str = "{spinner} {prefix:12} [{bar:40}] {pos}/{len} {msg}";

/// The recent processing rate, from samples of the processed count.
#[derive(Debug, Clone)]
pub struct Rate {
    window: Duration,
    samples: VecDeque<(Instant, u64)>,
}

impl Rate {
    pub fn new(window: Duration) -> Self {
        Self { window, samples: VecDeque::new() }
    }

    /// Records that `processed` requests were done at `at`.
    pub fn record(&mut self, at: Instant, processed: u64) {
        self.samples.push_back((at, processed));
        // Keep one sample at least `window` old as the anchor the rate is measured from.
        while self.samples.len() > 2
            && self.samples.get(1).is_some_and(|&(t, _)| at.duration_since(t) >= self.window)
        {
            self.samples.pop_front();
        }
    }

    /// Requests per second over the window; `None` until time has passed and something was done.
    pub fn per_sec(&self) -> Option<f64> {
        let (&(t0, n0), &(t1, n1)) = (self.samples.front()?, self.samples.back()?);
        let secs = t1.duration_since(t0).as_secs_f64();
        let done = n1.saturating_sub(n0);
        (secs > 0.0 && done > 0).then(|| done as f64 / secs)
    }
}

/// The rate to show: the recent one, or else the batch's average since it started running.
pub fn estimate(batch: &Batch, rate: &Rate, now: i64) -> Option<f64> {
    rate.per_sec().or_else(|| {
        let secs = now - batch.in_progress_at?;
        let done = format::processed(batch);
        (secs > 0 && done > 0).then(|| done as f64 / secs as f64)
    })
}

/// Time left at `per_sec`.
pub fn eta(batch: &Batch, per_sec: Option<f64>) -> Option<Duration> {
    let left = batch.request_counts.total.saturating_sub(format::processed(batch));
    let per_sec = per_sec.filter(|r| *r > 0.0)?;
    Duration::try_from_secs_f64(left as f64 / per_sec).ok()
}

/// `batch_x  in_progress  1200/5000 (24.0%)  3 failed  2.07 req/s  ETA 31m12s  elapsed 9m40s`
pub fn line(batch: &Batch, per_sec: Option<f64>, now: i64) -> String {
    let c = &batch.request_counts;
    let done = format::processed(batch);
    let pct = if c.total > 0 { done as f64 * 100.0 / c.total as f64 } else { 0.0 };
    format!(
        "{}  {}  {done}/{} ({pct:.1}%)  {}",
        batch.id,
        batch.status.as_str(),
        c.total,
        details(batch, per_sec, now)
    )
}

/// The part of a progress report after the counts.
fn details(batch: &Batch, per_sec: Option<f64>, now: i64) -> String {
    let rate = per_sec.map_or_else(|| "-".to_owned(), format::rate);
    let eta = eta(batch, per_sec).map_or_else(|| "-".to_owned(), format::duration);
    format!(
        "{} failed  {rate}  ETA {eta}  elapsed {}",
        batch.request_counts.failed,
        format::duration(format::elapsed(batch, now))
    )
}

/// Where progress goes while `wait` polls.
pub struct Progress {
    mode: Mode,
    rate: Rate,
}

enum Mode {
    Bar(ProgressBar),
    Lines { every: Duration, last: Option<(Instant, BatchStatus)> },
}

impl Progress {
    /// A bar when stdout is a terminal, else a line every [`LINE_EVERY`].
    pub fn for_stdout() -> Self {
        if std::io::stdout().is_terminal() { Self::bar() } else { Self::lines(LINE_EVERY) }
    }

    /// A line every `every`, and on each status change.
    pub fn lines(every: Duration) -> Self {
        Self { mode: Mode::Lines { every, last: None }, rate: Rate::new(RATE_WINDOW) }
    }

    fn bar() -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stdout());
        if let Ok(style) = ProgressStyle::with_template(BAR_TEMPLATE) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        Self { mode: Mode::Bar(bar), rate: Rate::new(RATE_WINDOW) }
    }

    /// Shows the batch as just polled.
    pub fn update(&mut self, batch: &Batch) {
        let at = Instant::now();
        self.rate.record(at, format::processed(batch));
        let now = format::now_unix();
        let per_sec = estimate(batch, &self.rate, now);
        match &mut self.mode {
            Mode::Bar(bar) => {
                bar.set_length(batch.request_counts.total);
                bar.set_position(format::processed(batch));
                bar.set_prefix(batch.status.as_str());
                bar.set_message(details(batch, per_sec, now));
            }
            // The final report follows a batch that ended; a progress line would repeat it.
            Mode::Lines { .. } if batch.status.is_terminal() => {}
            Mode::Lines { every, last } => {
                let due = match *last {
                    None => true,
                    Some((t, status)) => status != batch.status || at.duration_since(t) >= *every,
                };
                if due {
                    println!("{}", line(batch, per_sec, now));
                    *last = Some((at, batch.status));
                }
            }
        }
    }

    /// A note that does not stop the wait, such as a failed poll about to be retried.
    pub fn warn(&self, message: &str) {
        match &self.mode {
            Mode::Bar(bar) => bar.suspend(|| eprintln!("warning: {message}")),
            Mode::Lines { .. } => eprintln!("warning: {message}"),
        }
    }

    /// Removes the bar, leaving the terminal for the final report.
    pub fn finish(&self) {
        if let Mode::Bar(bar) = &self.mode {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_measured_over_the_window_only() {
        let t0 = Instant::now();
        let mut rate = Rate::new(Duration::from_secs(10));
        rate.record(t0, 0);
        assert_eq!(rate.per_sec(), None);
        rate.record(t0 + Duration::from_secs(5), 50);
        assert_eq!(rate.per_sec(), Some(10.0));
        // Slower later: the old fast start drops out of the window.
        rate.record(t0 + Duration::from_secs(20), 60);
        rate.record(t0 + Duration::from_secs(30), 70);
        assert_eq!(rate.per_sec(), Some(1.0));
    }

    #[test]
    fn no_progress_gives_no_rate() {
        let t0 = Instant::now();
        let mut rate = Rate::new(Duration::from_secs(10));
        rate.record(t0, 100);
        rate.record(t0 + Duration::from_secs(3), 100);
        assert_eq!(rate.per_sec(), None);
    }
}
