//! One loaded model's parallel slots (OLLAMA_NUM_PARALLEL), resizable at runtime. Like the
//! semaphore in Ollama's runner, a request waits for a slot without bound: the only 503 is
//! the scheduler's, for requests waiting for a model load (see `sched`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The slots were closed, so the wait cannot end.
#[derive(Debug, thiserror::Error)]
#[error("slots closed")]
pub struct Closed;

#[derive(Debug, Default)]
struct Size {
    target: usize,
    /// Permits still to retire after a shrink: they are in use now, so each is
    /// forgotten when released instead of returning to the pool.
    debt: usize,
}

/// A pool of `parallel` slots and the count of requests waiting for one.
#[derive(Debug)]
pub struct Slots {
    sem: Arc<Semaphore>,
    size: Arc<Mutex<Size>>,
    waiting: Arc<AtomicUsize>,
}

/// A held slot; dropping it frees the slot (or retires it after a shrink).
#[derive(Debug)]
pub struct SlotPermit {
    permit: Option<OwnedSemaphorePermit>,
    size: Arc<Mutex<Size>>,
}

impl Drop for SlotPermit {
    fn drop(&mut self) {
        let mut size = self.size.lock().unwrap_or_else(|e| e.into_inner());
        if size.debt > 0
            && let Some(p) = self.permit.take()
        {
            size.debt -= 1;
            p.forget();
        }
    }
}

/// Decrements the waiting count however the wait ends (slot, shutdown, client gone).
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Slots {
    pub fn new(parallel: usize) -> Self {
        Self {
            sem: Arc::new(Semaphore::new(parallel)),
            size: Arc::new(Mutex::new(Size { target: parallel, debt: 0 })),
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Requests waiting for a slot now.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Takes a free slot at once, or waits for one however many already wait.
    pub async fn acquire(&self) -> Result<SlotPermit, Closed> {
        if let Ok(permit) = self.sem.clone().try_acquire_owned() {
            return Ok(self.wrap(permit));
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(self.waiting.clone());
        let permit = self.sem.clone().acquire_owned().await.map_err(|_| Closed)?;
        Ok(self.wrap(permit))
    }

    fn wrap(&self, permit: OwnedSemaphorePermit) -> SlotPermit {
        SlotPermit { permit: Some(permit), size: self.size.clone() }
    }

    /// Changes the number of slots; requests already running finish undisturbed.
    pub fn resize(&self, parallel: usize) {
        let mut size = self.size.lock().unwrap_or_else(|e| e.into_inner());
        if parallel > size.target {
            let grow = parallel - size.target;
            let repaid = grow.min(size.debt);
            size.debt -= repaid;
            self.sem.add_permits(grow - repaid);
        } else {
            let shrink = size.target - parallel;
            let forgotten = self.sem.forget_permits(shrink);
            size.debt += shrink - forgotten;
        }
        size.target = parallel;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free(slots: &Slots) -> bool {
        slots.sem.available_permits() > 0
    }

    #[tokio::test]
    async fn resize_retires_held_slots_and_grows() {
        let slots = Slots::new(1);
        let held = slots.acquire().await.unwrap();
        assert!(!free(&slots));
        drop(held);

        // Shrinking to zero while a slot is held retires it on release.
        let held = slots.acquire().await.unwrap();
        slots.resize(0);
        drop(held);
        assert!(!free(&slots));
        slots.resize(2);
        let _a = slots.acquire().await.unwrap();
        let _b = slots.acquire().await.unwrap();
        assert!(!free(&slots));
    }
}
