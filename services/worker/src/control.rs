//! Whether a batch was cancelled or has expired, read from the control stream with a short cache,
//! so checking before every request costs a lookup per batch per second, not per request.

use nightshift_shared::messages::BatchControl;
use nightshift_shared::queue::Queue;
use nightshift_shared::subjects::{CONTROL_STREAM, control_subject};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How stale a cached control state may be: a cancel reaches every worker within this.
pub const CONTROL_TTL: Duration = Duration::from_secs(1);

pub struct ControlCache {
    queue: Arc<dyn Queue>,
    cache: Mutex<HashMap<String, (Instant, Option<BatchControl>)>>,
}

impl ControlCache {
    pub fn new(queue: Arc<dyn Queue>) -> Self {
        Self { queue, cache: Mutex::default() }
    }

    /// The batch's control state; `None` while it may run. A lookup failure counts as `None`
    /// (the request runs) and is retried on the next call.
    pub async fn get(&self, batch_id: &str) -> Option<BatchControl> {
        if let Ok(cache) = self.cache.lock()
            && let Some((at, state)) = cache.get(batch_id)
            && at.elapsed() < CONTROL_TTL
        {
            return *state;
        }
        let state =
            match self.queue.last_on_subject(CONTROL_STREAM, &control_subject(batch_id)).await {
                Ok(payload) => payload.and_then(|p| serde_json::from_slice(&p).ok()),
                Err(e) => {
                    tracing::warn!(batch_id, error = %e, "reading batch control");
                    return None;
                }
            };
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() > 10_000 {
                cache.retain(|_, (at, _)| at.elapsed() < CONTROL_TTL);
            }
            cache.insert(batch_id.to_owned(), (Instant::now(), state));
        }
        state
    }
}
