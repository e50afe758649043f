//! The distributed deployment's dependencies going away mid-batch: Postgres and NATS outages are
//! answered fast and lose nothing, and a JetStream cluster survives losing a node (its stream
//! leader included) with every request exactly once.

use nightshift_shared::openai::{Batch, BatchStatus};
use nightshift_testkit::stack::{
    Faults, Mode, Nats, Stack, assert_exactly_once, batch_done, chat_file,
};
use ollama_sim::SimConfig;
use serde_json::Value;

use crate::WORKER;
use std::time::{Duration, Instant};

fn progressed(n: u64) -> impl Fn(&Batch) -> bool {
    move |b| b.request_counts.completed + b.request_counts.failed >= n
}

/// Asserts a 503 in OpenAI's shape with a Retry-After, answered within `limit`.
async fn assert_unavailable(request: reqwest::RequestBuilder, limit: Duration) {
    let started = Instant::now();
    let response = request.send().await.unwrap();
    let took = started.elapsed();
    assert_eq!(response.status(), 503, "{:?}", response.text().await);
    assert!(took <= limit, "a 503 took {took:?}");
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
}

pub async fn postgres_outage_is_a_quick_503_and_the_batch_resumes(mode: Mode) {
    let sim = SimConfig { parallel: 8, latency_ms: Some(20), ..SimConfig::zero_latency() };
    let faults = Faults { postgres_proxy: true, ..Faults::default() };
    let mut stack = Stack::start_with(mode, sim, &["--chunk-size", "50"], faults).await;
    stack.spawn_worker_process(WORKER, &["--concurrency", "8"]).await;
    let batch = stack.submit(chat_file(1200), "/v1/chat/completions").await;
    stack.wait_until(&batch.id, Duration::from_secs(60), progressed(200)).await;

    stack.postgres_proxy().cut();
    let cut_at = nightshift_gateway::store::now();
    let http = reqwest::Client::new();
    let url = stack.gateway_url();
    for _ in 0..3 {
        assert_unavailable(
            http.get(format!("{url}/v1/batches/{}", batch.id)),
            Duration::from_secs(3),
        )
        .await;
    }
    assert_unavailable(http.get(format!("{url}/v1/files")), Duration::from_secs(3)).await;
    let ready = http.get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let ready: Value = ready.json().await.unwrap();
    assert!(ready["postgres"].as_str().unwrap().starts_with("unreachable"), "{ready}");
    assert_eq!(ready["nats"], "ok");
    // Workers go on while Postgres is away; their results wait on JetStream.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stack.postgres_proxy().heal().await;

    let done = stack
        .wait_until(&batch.id, Duration::from_secs(120), batch_done(BatchStatus::Completed))
        .await;
    assert_eq!((done.request_counts.completed, done.request_counts.failed), (1200, 0));
    assert!(done.completed_at.unwrap() > cut_at, "the batch ended before the outage");
    let output = stack.lines(done.output_file_id.as_deref()).await;
    assert_exactly_once(1200, &output, &[]);
}

pub async fn nats_outage_keeps_the_api_answering_and_loses_nothing(mode: Mode) {
    let sim = SimConfig { parallel: 8, latency_ms: Some(20), ..SimConfig::zero_latency() };
    let mut stack = Stack::start(mode, sim, &["--chunk-size", "50"]).await;
    stack.spawn_worker_process(WORKER, &["--concurrency", "8"]).await;
    let running = stack.submit(chat_file(1200), "/v1/chat/completions").await;
    let doomed = stack.submit(chat_file(600), "/v1/chat/completions").await;
    stack.wait_until(&running.id, Duration::from_secs(60), progressed(200)).await;

    let Nats::Server(nats) = stack.nats_mut() else { unreachable!() };
    nats.kill();
    let killed_at = nightshift_gateway::store::now();
    let http = reqwest::Client::new();
    let url = stack.gateway_url();
    let started = Instant::now();
    let got = http.get(format!("{url}/v1/batches/{}", running.id)).send().await.unwrap();
    assert_eq!(got.status(), 200);
    let cancel = http.post(format!("{url}/v1/batches/{}/cancel", doomed.id)).send().await.unwrap();
    assert_eq!(cancel.status(), 200);
    let late = stack.submit(chat_file(100), "/v1/chat/completions").await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the API waited on NATS: {:?}",
        started.elapsed()
    );
    let ready = http.get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let Nats::Server(nats) = stack.nats_mut() else { unreachable!() };
    nats.restart();

    let done = stack
        .wait_until(&running.id, Duration::from_secs(180), batch_done(BatchStatus::Completed))
        .await;
    assert!(done.completed_at.unwrap() > killed_at, "the batch ended before the outage");
    let output = stack.lines(done.output_file_id.as_deref()).await;
    assert_exactly_once(1200, &output, &[]);
    let cancelled = stack.wait_final(&doomed.id, Duration::from_secs(120)).await;
    assert_eq!(cancelled.status, BatchStatus::Cancelled);
    let output = stack.lines(cancelled.output_file_id.as_deref()).await;
    let errors = stack.lines(cancelled.error_file_id.as_deref()).await;
    assert_exactly_once(600, &output, &errors);
    let late = stack.wait_final(&late.id, Duration::from_secs(120)).await;
    assert_eq!(late.status, BatchStatus::Completed);
    assert_exactly_once(100, &stack.lines(late.output_file_id.as_deref()).await, &[]);
}

/// Which node a cluster test kills.
#[derive(Clone, Copy)]
enum Victim {
    Follower,
    StreamLeader,
}

async fn cluster_loses_a_node(mode: Mode, victim: Victim) {
    let sim = SimConfig { parallel: 8, latency_ms: Some(20), ..SimConfig::zero_latency() };
    let faults = Faults { nats_cluster: true, ..Faults::default() };
    let mut stack =
        Stack::start_with(mode, sim, &["--chunk-size", "50", "--stream-replicas", "3"], faults)
            .await;
    stack.worker_args = ["--stream-replicas", "3"].map(String::from).to_vec();
    stack.spawn_worker_process(WORKER, &["--concurrency", "8"]).await;
    stack.spawn_worker_process(WORKER, &["--concurrency", "8"]).await;
    let batch = stack.submit(chat_file(2000), "/v1/chat/completions").await;
    stack.wait_until(&batch.id, Duration::from_secs(60), progressed(400)).await;

    let Nats::Cluster(cluster) = stack.nats_mut() else { unreachable!() };
    let (leader, replicas) =
        stream_leader(&cluster.url(), nightshift_shared::subjects::RESULTS_STREAM).await;
    assert_eq!(replicas, 3);
    let leader = cluster.index_of(&leader).unwrap();
    let victim = match victim {
        Victim::StreamLeader => leader,
        Victim::Follower => (leader + 1) % 3,
    };
    cluster.kill(victim);
    let killed_at = nightshift_gateway::store::now();

    let done = stack
        .wait_until(&batch.id, Duration::from_secs(240), batch_done(BatchStatus::Completed))
        .await;
    assert_eq!((done.request_counts.completed, done.request_counts.failed), (2000, 0));
    assert!(done.completed_at.unwrap() > killed_at, "the batch ended before the node died");
    let output = stack.lines(done.output_file_id.as_deref()).await;
    assert_exactly_once(2000, &output, &[]);
}

pub async fn nats_cluster_loses_a_follower_and_every_request_is_answered_once(mode: Mode) {
    cluster_loses_a_node(mode, Victim::Follower).await;
}

pub async fn nats_cluster_loses_the_stream_leader_and_every_request_is_answered_once(mode: Mode) {
    cluster_loses_a_node(mode, Victim::StreamLeader).await;
}

/// The `server_name` of the node leading `stream`, as stream info reports it, and its replicas.
async fn stream_leader(url: &str, stream: &str) -> (String, usize) {
    let servers: Vec<&str> = url.split(',').collect();
    let client = async_nats::connect(servers).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(stream).await.unwrap();
    let info = stream.info().await.unwrap();
    let leader = info.cluster.as_ref().and_then(|c| c.leader.clone());
    (leader.expect("a clustered stream has a leader"), info.config.num_replicas)
}
