//! The local queue's consumers and acks: which messages go out, and what settles them.

use super::{ConsumerState, Kind, LocalQueue, stream_named, unix_ms};
use crate::queue::{Acker, Consumer, Delivery, QueueError, QueueResult, Settle};
use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::{QueryBuilder, Row, Sqlite};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

pub(super) struct LocalConsumer {
    pub(super) queue: LocalQueue,
    pub(super) stream: &'static str,
}

/// Nothing ready: what wakes a waiting fetch, and when the next message out falls due.
struct Wait {
    notify: Arc<Notify>,
    next_due: Option<Instant>,
}

impl LocalConsumer {
    /// Moves up to `max` ready messages out; `Err` says when to look again.
    fn take(&self, max: usize) -> Result<Vec<i64>, Wait> {
        let mut consumers = self.queue.inner.consumers();
        let Some(state) = consumers.get_mut(self.stream) else {
            return Err(Wait { notify: Arc::new(Notify::new()), next_due: None });
        };
        let now = Instant::now();
        let next_deadline = state.requeue_expired(now);
        let room = state.max_ack_pending.saturating_sub(state.out.len()).min(max);
        let taken: Vec<i64> = state.ready.iter().take(room).copied().collect();
        if taken.is_empty() {
            return Err(Wait { notify: state.notify.clone(), next_due: next_deadline });
        }
        let deadline = now + state.ack_wait;
        for seq in &taken {
            state.ready.remove(seq);
            state.out.insert(*seq, deadline);
        }
        Ok(taken)
    }

    async fn load(&self, taken: Vec<i64>) -> QueueResult<Vec<Delivery>> {
        let mut query: QueryBuilder<Sqlite> = QueryBuilder::new(
            "UPDATE messages SET delivered = delivered + 1 WHERE acked_at IS NULL AND seq IN (",
        );
        let mut list = query.separated(", ");
        for seq in &taken {
            list.push_bind(*seq);
        }
        query.push(") RETURNING seq, subject, payload, delivered");
        let rows = query
            .build()
            .fetch_all(&self.queue.inner.db)
            .await
            .map_err(|e| QueueError::backend("delivering", e))?;
        // RETURNING gives no order; deliveries go out in publish order.
        let order: HashMap<i64, usize> =
            taken.iter().enumerate().map(|(i, seq)| (*seq, i)).collect();
        let mut rows: Vec<(i64, String, Vec<u8>, i64)> =
            rows.into_iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect();
        rows.sort_by_key(|(seq, ..)| order.get(seq).copied().unwrap_or(usize::MAX));
        Ok(rows
            .into_iter()
            .map(|(seq, subject, payload, delivered)| {
                let acker = LocalAcker { queue: self.queue.clone(), stream: self.stream, seq };
                Delivery::new(
                    subject,
                    Bytes::from(payload),
                    delivered.max(1) as u64,
                    Box::new(acker),
                )
            })
            .collect())
    }
}

impl Consumer for LocalConsumer {
    fn fetch(&self, max: usize, wait: Duration) -> BoxFuture<'_, QueueResult<Vec<Delivery>>> {
        async move {
            let deadline = Instant::now() + wait;
            loop {
                let Wait { notify, next_due } = match self.take(max.max(1)) {
                    Ok(taken) => return self.load(taken).await,
                    Err(wait) => wait,
                };
                let now = Instant::now();
                if now >= deadline {
                    return Ok(Vec::new());
                }
                let wake_at = next_due.map_or(deadline, |n| n.min(deadline));
                let notified = notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                // A publish or an ack between `take` and `enable` is caught by looking once more.
                if self
                    .queue
                    .inner
                    .consumers()
                    .get(self.stream)
                    .is_some_and(ConsumerState::can_take)
                {
                    continue;
                }
                tokio::select! {
                    () = notified => {}
                    () = tokio::time::sleep_until(wake_at.into()) => {}
                }
            }
        }
        .boxed()
    }
}

struct LocalAcker {
    queue: LocalQueue,
    stream: &'static str,
    seq: i64,
}

impl LocalAcker {
    async fn finish(&self) -> QueueResult<()> {
        let keep = stream_named(self.stream)?.kind == Kind::KeptAfterAck;
        if let Some(state) = self.queue.inner.consumers().get_mut(self.stream) {
            state.out.remove(&self.seq);
            state.ready.remove(&self.seq);
            // A fetch held back by max_ack_pending may go on.
            state.notify.notify_waiters();
        }
        sqlx::query(
            "UPDATE messages SET acked_at = $2, payload = CASE WHEN $3 THEN payload ELSE x'' END
             WHERE seq = $1 AND acked_at IS NULL",
        )
        .bind(self.seq)
        .bind(unix_ms())
        .bind(keep)
        .execute(&self.queue.inner.db)
        .await
        .map(|_| ())
        .map_err(|e| QueueError::backend("acknowledging", e))
    }

    fn delay(&self, until: Option<Instant>) {
        if let Some(state) = self.queue.inner.consumers().get_mut(self.stream)
            && state.out.contains_key(&self.seq)
        {
            match until {
                Some(until) => {
                    state.out.insert(self.seq, until);
                }
                None => {
                    state.out.remove(&self.seq);
                    state.ready.insert(self.seq);
                    state.notify.notify_waiters();
                }
            }
        }
    }
}

impl Acker for LocalAcker {
    fn settle(&self, how: Settle) -> BoxFuture<'_, QueueResult<()>> {
        async move {
            match how {
                Settle::Ack | Settle::AckSync | Settle::Term => return self.finish().await,
                Settle::Nak(None) => self.delay(None),
                Settle::Nak(Some(delay)) => self.delay(Some(Instant::now() + delay)),
                Settle::Progress => {
                    let wait = self
                        .queue
                        .inner
                        .consumers()
                        .get(self.stream)
                        .map_or(Duration::from_secs(30), |s| s.ack_wait);
                    self.delay(Some(Instant::now() + wait));
                }
            }
            Ok(())
        }
        .boxed()
    }
}
