//! Adaptive limit on requests in flight to the model server: halves when it says it is
//! overloaded, climbs back as requests succeed.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How long a lowered limit holds before it may climb again.
pub const DEFAULT_COOL_DOWN: Duration = Duration::from_secs(5);

/// Overload signals this close to the last halving are the same episode: the requests that
/// were already queued when the server filled up all report it, and one full queue must not
/// collapse the limit to 1.
const SAME_EPISODE: Duration = Duration::from_secs(1);

/// Limits how many requests run against the backend at once.
///
/// Cloning shares the limit; permits free their slot on drop, so a cancelled request never
/// leaks one.
#[derive(Debug, Clone)]
pub struct Concurrency {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    max: usize,
    cool_down: Duration,
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Debug)]
struct State {
    limit: usize,
    in_flight: usize,
    /// While set and in the future, the limit does not climb.
    cool_down_until: Option<Instant>,
    last_halving: Option<Instant>,
}

/// One slot of the backend's capacity, given back on drop.
#[derive(Debug)]
pub struct ConcurrencyPermit {
    inner: Arc<Inner>,
}

impl Concurrency {
    /// A limit that starts at `max` (at least 1) and uses [`DEFAULT_COOL_DOWN`].
    pub fn new(max: usize) -> Self {
        Self::with_cool_down(max, DEFAULT_COOL_DOWN)
    }

    /// Like [`Concurrency::new`] with another cool-down window.
    pub fn with_cool_down(max: usize, cool_down: Duration) -> Self {
        let max = max.max(1);
        Self {
            inner: Arc::new(Inner {
                max,
                cool_down,
                state: Mutex::new(State {
                    limit: max,
                    in_flight: 0,
                    cool_down_until: None,
                    last_halving: None,
                }),
                changed: Notify::new(),
            }),
        }
    }

    /// Waits until fewer than the current limit are in flight, then takes a slot.
    pub async fn acquire(&self) -> ConcurrencyPermit {
        loop {
            // Registered before the check so a release between check and await is not missed.
            let changed = self.inner.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut state = self.inner.lock();
                if state.in_flight < state.limit {
                    state.in_flight += 1;
                    return ConcurrencyPermit { inner: Arc::clone(&self.inner) };
                }
            }
            changed.await;
        }
    }

    /// The server said it is overloaded: halve the limit (at least 1) and hold it for the
    /// cool-down window.
    pub fn on_overload(&self) {
        let now = Instant::now();
        let mut state = self.inner.lock();
        if state.last_halving.is_some_and(|at| now.duration_since(at) < SAME_EPISODE) {
            return;
        }
        let lowered = (state.limit / 2).max(1);
        if lowered < state.limit {
            tracing::info!(
                from = state.limit,
                to = lowered,
                "backend overloaded: lowering concurrency"
            );
        }
        state.limit = lowered;
        state.last_halving = Some(now);
        state.cool_down_until = Some(now + self.inner.cool_down);
    }

    /// A request got its answer: once the cool-down is over, the limit climbs by one.
    pub fn on_success(&self) {
        let now = Instant::now();
        let mut state = self.inner.lock();
        if state.limit >= self.inner.max || state.cool_down_until.is_some_and(|until| now < until) {
            return;
        }
        state.limit += 1;
        if state.limit == self.inner.max {
            tracing::info!(limit = state.limit, "backend concurrency back to its maximum");
        }
        drop(state);
        self.inner.changed.notify_waiters();
    }

    /// The limit in force now.
    pub fn current_limit(&self) -> usize {
        self.inner.lock().limit
    }

    /// Requests holding a permit now.
    pub fn in_flight(&self) -> usize {
        self.inner.lock().in_flight
    }

    /// The limit this started with and never exceeds.
    pub fn max(&self) -> usize {
        self.inner.max
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent under every panic point (plain integer updates), so a
        // poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for ConcurrencyPermit {
    fn drop(&mut self) {
        {
            let mut state = self.inner.lock();
            state.in_flight = state.in_flight.saturating_sub(1);
        }
        self.inner.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn limit_bounds_in_flight_and_a_release_lets_the_next_in() {
        let c = Concurrency::new(2);
        let a = c.acquire().await;
        let _b = c.acquire().await;
        assert_eq!(c.in_flight(), 2);

        let waiter = tokio::spawn({
            let c = c.clone();
            async move { c.acquire().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "a third request must wait while two are in flight");

        drop(a);
        let _c = waiter.await.unwrap();
        assert_eq!(c.in_flight(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn overload_halves_the_limit_and_it_recovers_after_the_cool_down() {
        let c = Concurrency::with_cool_down(8, Duration::from_secs(5));
        c.on_overload();
        assert_eq!(c.current_limit(), 4);

        // Same episode: the other queued requests reporting the same full queue.
        c.on_overload();
        assert_eq!(c.current_limit(), 4);

        tokio::time::advance(Duration::from_secs(2)).await;
        c.on_overload();
        assert_eq!(c.current_limit(), 2);

        c.on_success();
        assert_eq!(c.current_limit(), 2, "no climb during the cool-down");

        tokio::time::advance(Duration::from_secs(6)).await;
        for _ in 0..20 {
            c.on_success();
        }
        assert_eq!(c.current_limit(), 8, "climbs one per success up to max, never above");
    }

    #[tokio::test(start_paused = true)]
    async fn limit_never_drops_below_one() {
        let c = Concurrency::new(1);
        c.on_overload();
        assert_eq!(c.current_limit(), 1);
        let _p = c.acquire().await;
        assert_eq!(c.in_flight(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn lowered_limit_holds_back_new_requests_until_in_flight_drains() {
        let c = Concurrency::with_cool_down(4, Duration::from_secs(5));
        let permits: Vec<_> = [c.acquire().await, c.acquire().await, c.acquire().await].into();
        c.on_overload();
        assert_eq!(c.current_limit(), 2);

        let waiter = tokio::spawn({
            let c = c.clone();
            async move { c.acquire().await }
        });
        let mut permits = permits.into_iter();
        drop(permits.next());
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiter.is_finished(), "2 in flight with a limit of 2: still waiting");

        drop(permits.next());
        let _p = waiter.await.unwrap();
        assert_eq!(c.in_flight(), 2);
    }
}
