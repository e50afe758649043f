//! A chunk's finished results on their way to the queue: grouped into messages by count, bytes and
//! time, each message within the queue's largest payload. A result too large for any message goes
//! to the queue's object store with a small message naming it, or, past the configured limit (or
//! where there is no object store), becomes that request's `result_too_large` error.

use anyhow::Context;
use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use nightshift_shared::messages::{ResultGroup, ResultMessage, ResultOutcome};
use nightshift_shared::queue::{Outgoing, Queue};
use nightshift_shared::subjects;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most results published in one message.
pub const GROUP_MAX: usize = 64;
/// Longest a finished request's result waits for others to share its message. The chunk is
/// acknowledged only after its last group is durable, so this delays nothing but the batch's
/// live counts, by at most this.
pub const GROUP_WAIT: Duration = Duration::from_millis(20);
/// Room left in a message for its headers and de-duplication id.
const HEADROOM: usize = 16 * 1024;

/// Where results go and how large they may be.
#[derive(Clone)]
pub struct Limits {
    /// Most bytes of one message's payload.
    pub message_bytes: usize,
    /// Largest result accepted at all (stored as an object when over `message_bytes`).
    pub result_bytes: usize,
    /// Whether the queue has an object store for results over `message_bytes`.
    pub objects: bool,
}

impl Limits {
    pub fn of(queue: &dyn Queue, max_result_bytes: usize) -> Self {
        Self {
            message_bytes: queue.max_payload().saturating_sub(HEADROOM).max(1024),
            result_bytes: max_result_bytes,
            objects: queue.objects().is_some(),
        }
    }
}

/// One message ready to go.
enum Sealed {
    Group {
        lines: Vec<u32>,
        payload: Vec<u8>,
    },
    /// A result whose body goes to the object store first, then a message naming it; its
    /// outcome is already `Stored`, but for the object's name.
    Large {
        result: ResultMessage,
        body: Bytes,
    },
}

/// Results of one chunk waiting to be published.
pub struct Outbox {
    batch_id: String,
    chunk_index: u32,
    limits: Limits,
    open: Vec<(u32, Vec<u8>)>,
    open_bytes: usize,
    since: Option<Instant>,
    sealed: VecDeque<Sealed>,
}

impl Outbox {
    pub fn new(batch_id: &str, chunk_index: u32, limits: Limits) -> Self {
        Self {
            batch_id: batch_id.to_owned(),
            chunk_index,
            limits,
            open: Vec::new(),
            open_bytes: 0,
            since: None,
            sealed: VecDeque::new(),
        }
    }

    /// Adds a finished result.
    pub fn push(&mut self, result: ResultMessage) -> anyhow::Result<()> {
        let encoded = serde_json::to_vec(&result).context("encoding a result")?;
        let body = match &result.outcome {
            ResultOutcome::Response { body, .. } => body.get().len(),
            _ => encoded.len(),
        };
        let fits = encoded.len() + 64 <= self.limits.message_bytes;
        if body <= self.limits.result_bytes && fits {
            return self.add(result.line, encoded);
        }
        if body <= self.limits.result_bytes
            && self.limits.objects
            && let ResultOutcome::Response { status_code, body } = result.outcome
        {
            let text: Box<str> = body.into();
            let body = Bytes::from(text.into_boxed_bytes());
            let bytes = body.len() as u64;
            // The object's name is given when it is stored.
            let outcome = ResultOutcome::Stored { status_code, object: String::new(), bytes };
            self.sealed
                .push_back(Sealed::Large { result: ResultMessage { outcome, ..result }, body });
            return Ok(());
        }
        let limit = if self.limits.objects {
            self.limits.result_bytes
        } else {
            self.limits.result_bytes.min(self.limits.message_bytes)
        };
        tracing::warn!(batch_id = %result.batch_id, line = result.line, bytes = body, limit, "result too large; recorded as an error");
        let too_large = ResultMessage {
            outcome: ResultOutcome::Error {
                code: "result_too_large".into(),
                message: format!(
                    "The response is {body} bytes; results may be at most {limit} bytes \
                     (WORKER_MAX_RESULT_BYTES). Split the request (fewer inputs per request)."
                ),
            },
            ..result
        };
        let encoded = serde_json::to_vec(&too_large).context("encoding a result")?;
        self.add(too_large.line, encoded)
    }

    fn add(&mut self, line: u32, encoded: Vec<u8>) -> anyhow::Result<()> {
        if !self.open.is_empty() && self.open_bytes + encoded.len() + 64 > self.limits.message_bytes
        {
            self.seal();
        }
        self.since.get_or_insert_with(Instant::now);
        self.open_bytes += encoded.len() + 1;
        self.open.push((line, encoded));
        if self.open.len() >= GROUP_MAX {
            self.seal();
        }
        Ok(())
    }

    /// Closes the open group into a message.
    fn seal(&mut self) {
        if self.open.is_empty() {
            return;
        }
        let open = std::mem::take(&mut self.open);
        let payload = ResultGroup::encode_parts(open.iter().map(|(_, e)| e.as_slice()));
        let lines = open.into_iter().map(|(line, _)| line).collect();
        self.sealed.push_back(Sealed::Group { lines, payload });
        self.open_bytes = 0;
        self.since = None;
    }

    /// The next message ready to go, if any.
    fn take(&mut self, flush: bool) -> Option<Sealed> {
        if self.sealed.is_empty() && (flush || self.due().is_some_and(|d| d <= Instant::now())) {
            self.seal();
        }
        self.sealed.pop_front()
    }

    /// When the oldest open result must go out.
    pub fn due(&self) -> Option<Instant> {
        self.since.map(|since| since + GROUP_WAIT)
    }

    /// Whether nothing waits, sealed or open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty() && self.sealed.is_empty()
    }

    /// The next message to publish, if one is ready: a sealed one, or the open group when it is
    /// due or `flush` says everything must go. The future resolves once it is durable.
    pub fn next(
        &mut self,
        queue: &Arc<dyn Queue>,
        flush: bool,
    ) -> Option<BoxFuture<'static, anyhow::Result<()>>> {
        let sealed = self.take(flush)?;
        let subject = subjects::result_subject(&self.batch_id, self.chunk_index);
        let batch_id = self.batch_id.clone();
        let queue = queue.clone();
        Some(
            async move {
                match sealed {
                    Sealed::Group { lines, payload } => {
                        let message = Outgoing::new(subject, payload)
                            .with_id(ResultGroup::msg_id(&batch_id, &lines));
                        queue.publish(message).await.context("publishing results")
                    }
                    Sealed::Large { result, body } => {
                        publish_large(&*queue, subject, &batch_id, result, body).await
                    }
                }
            }
            .boxed(),
        )
    }
}

/// Stores a large body as an object, then publishes the result naming it. A worker that dies in
/// between leaves an object nobody names; it expires with the results window.
async fn publish_large(
    queue: &dyn Queue,
    subject: String,
    batch_id: &str,
    result: ResultMessage,
    body: Bytes,
) -> anyhow::Result<()> {
    let objects = queue.objects().context("this queue has no object store")?;
    let ResultOutcome::Stored { status_code, bytes, .. } = result.outcome else {
        anyhow::bail!("a large result is published as a stored one");
    };
    let object = format!("{batch_id}.{}.{}", result.line, uuid::Uuid::new_v4().simple());
    objects.put(&object, body).await.context("storing a large result")?;
    let line = result.line;
    let stored =
        ResultMessage { outcome: ResultOutcome::Stored { status_code, object, bytes }, ..result };
    let payload =
        serde_json::to_vec(&ResultGroup { results: vec![stored] }).context("encoding results")?;
    let message = Outgoing::new(subject, payload).with_id(ResultGroup::msg_id(batch_id, &[line]));
    queue.publish(message).await.context("publishing results")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::value::RawValue;

    fn result(line: u32, body_bytes: usize) -> ResultMessage {
        let body = format!("{{\"pad\":\"{}\"}}", "x".repeat(body_bytes));
        ResultMessage {
            batch_id: "batch_1".into(),
            chunk_index: 0,
            line,
            custom_id: format!("req-{line}"),
            request_id: format!("batch_req_{line}"),
            worker_id: "w".into(),
            outcome: ResultOutcome::Response {
                status_code: 200,
                body: RawValue::from_string(body).unwrap(),
            },
            usage: None,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Whatever the sizes, every message fits the queue, every line leaves exactly once (a
        /// large one may overtake the open group: results are keyed by line, not by order), and
        /// only what is over a limit is stored or refused.
        #[test]
        fn every_result_leaves_once_in_a_message_that_fits(
            sizes in proptest::collection::vec(prop_oneof![0usize..200, 200usize..3000, 3000usize..9000], 1..150),
            message_bytes in 1500usize..6000,
            result_bytes in 1000usize..10_000,
            objects in any::<bool>(),
        ) {
            let limits = Limits { message_bytes, result_bytes, objects };
            let mut outbox = Outbox::new("batch_1", 0, limits);
            let mut sent: Vec<u32> = Vec::new();
            for (i, size) in sizes.iter().enumerate() {
                outbox.push(result(i as u32 + 1, *size)).unwrap();
                while let Some(sealed) = outbox.take(false) {
                    sent.extend(check(sealed, message_bytes, result_bytes, objects, &sizes)?);
                }
            }
            while let Some(sealed) = outbox.take(true) {
                sent.extend(check(sealed, message_bytes, result_bytes, objects, &sizes)?);
            }
            prop_assert!(outbox.is_empty());
            sent.sort_unstable();
            prop_assert_eq!(sent, (1..=sizes.len() as u32).collect::<Vec<_>>());
        }
    }

    /// The lines one message carries, after checking it against the limits.
    fn check(
        sealed: Sealed,
        message_bytes: usize,
        result_bytes: usize,
        objects: bool,
        sizes: &[usize],
    ) -> Result<Vec<u32>, TestCaseError> {
        match sealed {
            Sealed::Group { lines, payload } => {
                prop_assert!(payload.len() <= message_bytes, "{} > {message_bytes}", payload.len());
                prop_assert!(lines.len() <= GROUP_MAX);
                let decoded = ResultGroup::decode(&payload).unwrap();
                prop_assert_eq!(decoded.iter().map(|r| r.line).collect::<Vec<_>>(), lines.clone());
                for r in &decoded {
                    let body = sizes[r.line as usize - 1] + 10;
                    match &r.outcome {
                        ResultOutcome::Error { code, .. } => {
                            prop_assert_eq!(code.as_str(), "result_too_large");
                            prop_assert!(body > result_bytes || !objects);
                        }
                        _ => prop_assert!(body <= result_bytes),
                    }
                }
                Ok(lines)
            }
            Sealed::Large { result, body } => {
                prop_assert!(objects);
                prop_assert!(body.len() <= result_bytes);
                prop_assert_eq!(body.len(), sizes[result.line as usize - 1] + 10);
                Ok(vec![result.line])
            }
        }
    }
}
