//! [`Queue`] on NATS JetStream: the distributed deployment, any number of processes and hosts.

use super::{
    Acker, Consumer, ConsumerSpec, Delivery, Outgoing, Queue, QueueError, QueueResult, Settle,
};
use crate::jetstream::{Streams, ensure};
use crate::subjects;
use anyhow::Context;
use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{LastRawMessageErrorKind, Stream};
use async_nats::jetstream::{self, AckKind, Message};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// Publishes awaiting the server's ack at most this many at a time.
const PUBLISH_WINDOW: usize = 256;

/// How long after a pull's expiry the server's last messages may still be on their way.
const EXPIRY_GRACE: Duration = Duration::from_millis(200);

pub struct JetStreamQueue {
    client: async_nats::Client,
    js: jetstream::Context,
    streams: Streams,
}

impl JetStreamQueue {
    /// Connects and makes sure every stream exists (see [`ensure`]).
    pub async fn connect(url: &str, results_retention: Duration) -> anyhow::Result<Self> {
        let client = async_nats::connect(url)
            .await
            .with_context(|| format!("connecting to NATS at {url} (NATS_URL)"))?;
        let js = jetstream::new(client.clone());
        let streams = ensure(&js, results_retention).await?;
        Ok(Self { client, js, streams })
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    fn stream(&self, name: &str) -> QueueResult<&Stream> {
        match name {
            subjects::CHUNKS_STREAM => Ok(&self.streams.chunks),
            subjects::RESULTS_STREAM => Ok(&self.streams.results),
            subjects::CONTROL_STREAM => Ok(&self.streams.control),
            subjects::TELEMETRY_STREAM => Ok(&self.streams.telemetry),
            other => Err(QueueError::UnknownStream(other.to_owned())),
        }
    }

    async fn publish_in_order(&self, messages: Vec<Outgoing>) -> QueueResult<()> {
        let mut acks: VecDeque<PublishAckFuture> = VecDeque::new();
        for message in messages {
            let mut publish = PublishMessage::build().payload(message.payload);
            if let Some(id) = &message.msg_id {
                publish = publish.message_id(id);
            }
            let ack = self
                .js
                .send_publish(message.subject, publish)
                .await
                .map_err(|e| QueueError::backend("publishing", e))?;
            acks.push_back(ack);
            while acks.len() >= PUBLISH_WINDOW {
                settle_publish(&mut acks).await?;
            }
        }
        while !acks.is_empty() {
            settle_publish(&mut acks).await?;
        }
        Ok(())
    }
}

async fn settle_publish(acks: &mut VecDeque<PublishAckFuture>) -> QueueResult<()> {
    if let Some(ack) = acks.pop_front() {
        ack.await.map_err(|e| QueueError::backend("JetStream did not acknowledge a publish", e))?;
    }
    Ok(())
}

impl Queue for JetStreamQueue {
    fn kind(&self) -> &'static str {
        "nats"
    }

    fn health(&self) -> Result<(), String> {
        match self.client.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            other => Err(other.to_string()),
        }
    }

    fn max_payload(&self) -> usize {
        self.client.server_info().max_payload
    }

    fn publish_all(&self, messages: Vec<Outgoing>) -> BoxFuture<'_, QueueResult<()>> {
        self.publish_in_order(messages).boxed()
    }

    fn consumer(&self, spec: ConsumerSpec) -> BoxFuture<'_, QueueResult<Arc<dyn Consumer>>> {
        async move {
            let stream = self.stream(spec.stream)?;
            let consumer = stream
                .get_or_create_consumer(
                    spec.durable,
                    pull::Config {
                        durable_name: Some(spec.durable.into()),
                        description: Some(spec.description.into()),
                        filter_subject: spec.filter.clone().unwrap_or_default(),
                        ack_policy: AckPolicy::Explicit,
                        ack_wait: spec.ack_wait,
                        max_ack_pending: spec.max_ack_pending,
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| QueueError::backend("creating a consumer", e))?;
            Ok(Arc::new(JetStreamConsumer { consumer }) as Arc<dyn Consumer>)
        }
        .boxed()
    }

    fn last_on_subject<'a>(
        &'a self,
        stream: &'static str,
        subject: &'a str,
    ) -> BoxFuture<'a, QueueResult<Option<Bytes>>> {
        async move {
            match self.stream(stream)?.get_last_raw_message_by_subject(subject).await {
                Ok(message) => Ok(Some(message.payload)),
                Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
                Err(e) => Err(QueueError::backend("reading the last message", e)),
            }
        }
        .boxed()
    }

    fn read_subject<'a>(
        &'a self,
        stream: &'static str,
        subject: &'a str,
    ) -> BoxFuture<'a, QueueResult<Vec<Bytes>>> {
        async move {
            let stream = self.stream(stream)?;
            // Most subjects read this way are empty: one cheap lookup before a consumer.
            match stream.get_last_raw_message_by_subject(subject).await {
                Ok(_) => {}
                Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {
                    return Ok(Vec::new());
                }
                Err(e) => return Err(QueueError::backend("looking up a subject", e)),
            }
            let consumer = stream
                .create_consumer(pull::Config {
                    filter_subject: subject.to_owned(),
                    ack_policy: AckPolicy::None,
                    inactive_threshold: Duration::from_secs(30),
                    ..Default::default()
                })
                .await
                .map_err(|e| QueueError::backend("reading a subject", e))?;
            let read = read_all(&consumer).await;
            let name = consumer.cached_info().name.clone();
            let _ = stream.delete_consumer(&name).await;
            read
        }
        .boxed()
    }

    fn purge_subject<'a>(
        &'a self,
        stream: &'static str,
        subject: &'a str,
    ) -> BoxFuture<'a, QueueResult<()>> {
        async move {
            self.stream(stream)?
                .purge()
                .filter(subject)
                .await
                .map(|_| ())
                .map_err(|e| QueueError::backend("purging a subject", e))
        }
        .boxed()
    }
}

async fn read_all(consumer: &PullConsumer) -> QueueResult<Vec<Bytes>> {
    let mut out = Vec::new();
    loop {
        let mut page = consumer
            .fetch()
            .max_messages(500)
            .messages()
            .await
            .map_err(|e| QueueError::backend("reading a subject", e))?;
        let before = out.len();
        while let Some(message) = page.next().await {
            let message = message.map_err(|e| QueueError::backend("reading a subject", e))?;
            out.push(message.payload.clone());
        }
        if out.len() == before {
            return Ok(out);
        }
    }
}

struct JetStreamConsumer {
    consumer: PullConsumer,
}

impl JetStreamConsumer {
    async fn pull(&self, max: usize, wait: Duration) -> QueueResult<Vec<Delivery>> {
        let pulled = if wait.is_zero() {
            self.consumer.fetch().max_messages(max).messages().await
        } else {
            self.consumer.batch().max_messages(max).expires(wait).messages().await
        };
        let mut messages = pulled.map_err(|e| QueueError::backend("pulling", e))?;
        // A pull the server expired after delivering some messages may end without a 408
        // (nats-server 2.9 sends none), and the client would then hold them until its own
        // timer, `wait` plus 5 s. Past the deadline, take what has arrived and stop.
        let deadline = (!wait.is_zero()).then(|| tokio::time::Instant::now() + wait + EXPIRY_GRACE);
        let mut expired = false;
        let mut out = Vec::with_capacity(max);
        loop {
            let next = match deadline {
                _ if expired => match messages.next().now_or_never() {
                    Some(next) => next,
                    None => break,
                },
                Some(deadline) => match tokio::time::timeout_at(deadline, messages.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        expired = true;
                        continue;
                    }
                },
                None => messages.next().await,
            };
            let Some(message) = next else { break };
            match message {
                Ok(m) => out.push(delivery(m)),
                // One message failing to arrive (a status line, a timeout) leaves it to the
                // next pull; JetStream redelivers what was not acknowledged.
                Err(e) => tracing::warn!(error = %e, "pulling"),
            }
        }
        Ok(out)
    }
}

impl Consumer for JetStreamConsumer {
    fn fetch(&self, max: usize, wait: Duration) -> BoxFuture<'_, QueueResult<Vec<Delivery>>> {
        self.pull(max.max(1), wait).boxed()
    }
}

fn delivery(message: Message) -> Delivery {
    let delivered = message.info().map(|i| i.delivered.max(1) as u64).unwrap_or(1);
    Delivery::new(
        message.subject.to_string(),
        message.payload.clone(),
        delivered,
        Box::new(JetStreamAcker(message)),
    )
}

struct JetStreamAcker(Message);

impl Acker for JetStreamAcker {
    fn settle(&self, how: Settle) -> BoxFuture<'_, QueueResult<()>> {
        async move {
            let done = match how {
                Settle::Ack => self.0.ack().await,
                Settle::AckSync => self.0.double_ack().await,
                Settle::Nak(delay) => self.0.ack_with(AckKind::Nak(delay)).await,
                Settle::Progress => self.0.ack_with(AckKind::Progress).await,
                Settle::Term => self.0.ack_with(AckKind::Term).await,
            };
            done.map_err(|e| QueueError::backend("acknowledging", e))
        }
        .boxed()
    }
}
