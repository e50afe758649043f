//! The in-process queue keeps JetStream's promises: durable publishes, de-duplication,
//! redelivery with a delivery count, naks, progress, and nothing lost across a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use nightshift_shared::db::Db;
use nightshift_shared::queue::local::LocalQueue;
use nightshift_shared::queue::{Consumer, ConsumerSpec, Outgoing, Queue, Settle};
use nightshift_shared::subjects;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }

    async fn open(&self) -> Arc<dyn Queue> {
        let Db::Sqlite(pool) = Db::sqlite_file(&self.dir.path().join("queue.db"), 1).await.unwrap()
        else {
            unreachable!()
        };
        Arc::new(LocalQueue::open(pool, Duration::from_secs(3600)).await.unwrap())
    }
}

fn chunks_spec(ack_wait: Duration) -> ConsumerSpec {
    ConsumerSpec {
        stream: subjects::CHUNKS_STREAM,
        durable: subjects::WORKERS_CONSUMER,
        description: "test",
        filter: None,
        ack_wait,
        max_ack_pending: 1000,
    }
}

fn chunk(batch: &str, index: u32, body: &str) -> Outgoing {
    Outgoing::new(subjects::chunk_subject(batch), body.as_bytes().to_vec())
        .with_id(subjects::chunk_msg_id(batch, index))
}

async fn payloads(consumer: &Arc<dyn Consumer>, max: usize) -> Vec<(String, u64)> {
    let got = consumer.fetch(max, Duration::ZERO).await.unwrap();
    let out =
        got.iter().map(|d| (String::from_utf8(d.payload.to_vec()).unwrap(), d.delivered)).collect();
    for d in &got {
        d.ack().await.unwrap();
    }
    out
}

#[tokio::test]
async fn messages_come_out_once_in_order_and_duplicates_are_stored_once() {
    let fixture = Fixture::new();
    let queue = fixture.open().await;
    let consumer = queue.consumer(chunks_spec(Duration::from_secs(30))).await.unwrap();
    queue.publish_all(vec![chunk("b", 0, "zero"), chunk("b", 1, "one")]).await.unwrap();
    queue.publish(chunk("b", 0, "zero again")).await.unwrap();

    let got = payloads(&consumer, 10).await;

    assert_eq!(got, vec![("zero".to_owned(), 1), ("one".to_owned(), 1)]);
    assert!(consumer.fetch(10, Duration::ZERO).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_waiting_fetch_wakes_when_a_message_is_published() {
    let fixture = Fixture::new();
    let queue = fixture.open().await;
    let consumer = queue.consumer(chunks_spec(Duration::from_secs(30))).await.unwrap();
    let publisher = queue.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        publisher.publish(chunk("b", 0, "late")).await.unwrap();
    });

    let started = Instant::now();
    let got = consumer.fetch(10, Duration::from_secs(5)).await.unwrap();

    assert_eq!(got.len(), 1);
    assert!(started.elapsed() < Duration::from_secs(2), "woke after {:?}", started.elapsed());
}

#[tokio::test]
async fn an_unacknowledged_message_is_redelivered_after_the_ack_wait_and_says_so() {
    let fixture = Fixture::new();
    let queue = fixture.open().await;
    let consumer = queue.consumer(chunks_spec(Duration::from_millis(200))).await.unwrap();
    queue.publish(chunk("b", 0, "work")).await.unwrap();

    let first = consumer.fetch(1, Duration::ZERO).await.unwrap();
    assert_eq!(first[0].delivered, 1);
    assert!(consumer.fetch(1, Duration::ZERO).await.unwrap().is_empty(), "still out");
    let again = consumer.fetch(1, Duration::from_secs(2)).await.unwrap();

    assert_eq!(again.len(), 1);
    assert_eq!(again[0].delivered, 2);
}

#[tokio::test]
async fn progress_keeps_a_message_out_and_a_nak_brings_it_back_after_its_delay() {
    let fixture = Fixture::new();
    let queue = fixture.open().await;
    let consumer = queue.consumer(chunks_spec(Duration::from_millis(300))).await.unwrap();
    queue.publish(chunk("b", 0, "long job")).await.unwrap();
    let out = consumer.fetch(1, Duration::ZERO).await.unwrap().pop().unwrap();

    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        out.settle(Settle::Progress).await.unwrap();
    }
    assert!(consumer.fetch(1, Duration::ZERO).await.unwrap().is_empty(), "kept by progress");
    out.settle(Settle::Nak(Some(Duration::from_millis(100)))).await.unwrap();
    assert!(consumer.fetch(1, Duration::ZERO).await.unwrap().is_empty(), "nak delay holds");
    let back = consumer.fetch(1, Duration::from_secs(2)).await.unwrap();

    assert_eq!(back.len(), 1);
    assert_eq!(back[0].delivered, 2);
}

#[tokio::test]
async fn a_restart_delivers_what_was_not_acknowledged_as_a_redelivery() {
    let fixture = Fixture::new();
    {
        let queue = fixture.open().await;
        let consumer = queue.consumer(chunks_spec(Duration::from_secs(30))).await.unwrap();
        queue
            .publish_all(vec![chunk("b", 0, "done"), chunk("b", 1, "taken"), chunk("b", 2, "new")])
            .await
            .unwrap();
        let taken = consumer.fetch(2, Duration::ZERO).await.unwrap();
        taken[0].ack().await.unwrap();
        // The second is out when the process dies.
    }

    let queue = fixture.open().await;
    let consumer = queue.consumer(chunks_spec(Duration::from_secs(30))).await.unwrap();
    queue.publish(chunk("b", 0, "done, published again")).await.unwrap();
    let got = payloads(&consumer, 10).await;

    assert_eq!(got, vec![("taken".to_owned(), 2), ("new".to_owned(), 1)]);
}

#[tokio::test]
async fn results_stay_readable_after_their_ack_and_control_keeps_the_last_state() {
    let fixture = Fixture::new();
    let queue = fixture.open().await;
    let results = queue
        .consumer(ConsumerSpec {
            stream: subjects::RESULTS_STREAM,
            durable: subjects::COLLECTOR_CONSUMER,
            description: "test",
            filter: None,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 1000,
        })
        .await
        .unwrap();
    let subject = subjects::result_subject("b", 3);
    queue.publish(Outgoing::new(subject.clone(), b"r1".to_vec())).await.unwrap();
    queue.publish(Outgoing::new(subject.clone(), b"r2".to_vec())).await.unwrap();
    assert_eq!(payloads(&results, 10).await.len(), 2);

    let held = queue.read_subject(subjects::RESULTS_STREAM, &subject).await.unwrap();
    assert_eq!(held, vec![b"r1".to_vec(), b"r2".to_vec()]);
    let none = queue.read_subject(subjects::RESULTS_STREAM, "nightshift.results.b.4").await;
    assert!(none.unwrap().is_empty());

    let control = subjects::control_subject("b");
    assert_eq!(queue.last_on_subject(subjects::CONTROL_STREAM, &control).await.unwrap(), None);
    queue.publish(Outgoing::new(control.clone(), b"\"cancelled\"".to_vec())).await.unwrap();
    queue.publish(Outgoing::new(control.clone(), b"\"expired\"".to_vec())).await.unwrap();
    let last = queue.last_on_subject(subjects::CONTROL_STREAM, &control).await.unwrap();
    assert_eq!(last.unwrap().as_ref(), b"\"expired\"");

    // A finished batch's results go, acknowledged or not, and no other batch's.
    let other = subjects::result_subject("b2", 0);
    queue.publish(Outgoing::new(other.clone(), b"kept".to_vec())).await.unwrap();
    queue.publish(Outgoing::new(subject.clone(), b"r3".to_vec())).await.unwrap();
    queue.purge_subject(subjects::RESULTS_STREAM, &subjects::results_of_batch("b")).await.unwrap();
    assert!(queue.read_subject(subjects::RESULTS_STREAM, &subject).await.unwrap().is_empty());
    assert_eq!(queue.read_subject(subjects::RESULTS_STREAM, &other).await.unwrap().len(), 1);
    assert_eq!(payloads(&results, 10).await, vec![("kept".to_owned(), 1)]);
}

#[tokio::test]
async fn a_purged_subject_is_never_delivered_and_a_second_consumer_is_refused() {
    let fixture = Fixture::new();
    let queue = fixture.open().await;
    let consumer = queue.consumer(chunks_spec(Duration::from_secs(30))).await.unwrap();
    queue.publish_all(vec![chunk("gone", 0, "x"), chunk("kept", 0, "y")]).await.unwrap();

    queue.purge_subject(subjects::CHUNKS_STREAM, &subjects::chunk_subject("gone")).await.unwrap();

    assert_eq!(payloads(&consumer, 10).await, vec![("y".to_owned(), 1)]);
    let mut other = chunks_spec(Duration::from_secs(30));
    other.durable = "someone-else";
    assert!(queue.consumer(other).await.is_err());
    let unknown = queue.publish(Outgoing::new("elsewhere.x", b"x".to_vec())).await;
    assert!(unknown.is_err(), "a subject no stream holds is refused");
}

#[tokio::test]
async fn max_ack_pending_holds_messages_back_until_an_ack_frees_room() {
    let fixture = Fixture::new();
    let queue = fixture.open().await;
    let mut spec = chunks_spec(Duration::from_secs(30));
    spec.max_ack_pending = 1;
    let consumer = queue.consumer(spec).await.unwrap();
    queue.publish_all(vec![chunk("b", 0, "first"), chunk("b", 1, "second")]).await.unwrap();

    let first = consumer.fetch(2, Duration::ZERO).await.unwrap();
    assert_eq!(first.len(), 1, "one may be out at a time");
    let waiting = {
        let consumer = consumer.clone();
        tokio::spawn(async move { consumer.fetch(2, Duration::from_secs(5)).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    first[0].ack().await.unwrap();
    let second = waiting.await.unwrap();

    assert_eq!(second.len(), 1);
    assert_eq!(second[0].payload.as_ref(), b"second");
    assert!(started.elapsed() < Duration::from_secs(2), "the ack woke the fetch");
}
