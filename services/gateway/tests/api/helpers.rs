//! `spawn_app` and the requests the tests make, phrased as a client would.

use nightshift_gateway::AppState;
use nightshift_shared::db::Db;
use nightshift_shared::messages::ChunkMessage;
use nightshift_shared::openai::{Batch, BatchStatus, FileObject};
use nightshift_shared::subjects::CHUNKS_STREAM;
use nightshift_testkit::NatsServer;
use nightshift_testkit::gateway::InProcessGateway;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::time::{Duration, Instant};

pub struct TestApp {
    pub url: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub nats: NatsServer,
    pub key: Option<String>,
    gateway: InProcessGateway,
}

pub async fn spawn_app(pool: PgPool) -> TestApp {
    spawn_app_with(pool, &[]).await
}

/// Starts a gateway with extra command-line `args` (limits, keys) on its own NATS server.
pub async fn spawn_app_with(pool: PgPool, args: &[&str]) -> TestApp {
    spawn_on(pool, NatsServer::start(), args).await
}

/// Starts a gateway on an existing NATS server, as a second replica or a restarted one would.
pub async fn spawn_on(pool: PgPool, nats: NatsServer, args: &[&str]) -> TestApp {
    let gateway = InProcessGateway::start(&nats.url(), Db::Postgres(pool), args).await;
    TestApp {
        url: gateway.url.clone(),
        client: reqwest::Client::new(),
        state: gateway.state.clone(),
        nats,
        key: None,
        gateway,
    }
}

impl TestApp {
    /// Stops the gateway and hands back its NATS server for another one.
    pub async fn stop(self) -> NatsServer {
        self.gateway.stop().await;
        self.nats
    }

    pub fn with_key(mut self, key: &str) -> Self {
        self.key = Some(key.to_owned());
        self
    }

    fn authed(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.authed(self.client.get(format!("{}{path}", self.url)))
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.authed(self.client.post(format!("{}{path}", self.url)))
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.authed(self.client.delete(format!("{}{path}", self.url)))
    }

    pub async fn upload(&self, filename: &str, bytes: Vec<u8>) -> reqwest::Response {
        let form = reqwest::multipart::Form::new()
            .text("purpose", "batch")
            .part("file", reqwest::multipart::Part::bytes(bytes).file_name(filename.to_owned()));
        self.post("/v1/files").multipart(form).send().await.unwrap()
    }

    pub async fn upload_ok(&self, bytes: Vec<u8>) -> FileObject {
        let response = self.upload("input.jsonl", bytes).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    pub async fn create_batch(&self, body: Value) -> reqwest::Response {
        self.post("/v1/batches").json(&body).send().await.unwrap()
    }

    /// Uploads `file` and creates a chat-completions batch from it.
    pub async fn submit(&self, file: Vec<u8>) -> Batch {
        let file = self.upload_ok(file).await;
        let response = self
            .create_batch(json!({
                "input_file_id": file.id,
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
            }))
            .await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    pub async fn batch(&self, id: &str) -> Batch {
        let response = self.get(&format!("/v1/batches/{id}")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Polls a batch until it reaches `status`, failing the test after 60 s.
    pub async fn wait_for(&self, id: &str, status: BatchStatus) -> Batch {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let batch = self.batch(id).await;
            if batch.status == status {
                return batch;
            }
            assert!(Instant::now() < deadline, "batch {id} stuck in {:?}", batch.status);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Every chunk message waiting on the work queue, in publish order.
    pub async fn chunk_messages(&self) -> Vec<ChunkMessage> {
        let js = async_nats::jetstream::new(async_nats::connect(self.nats.url()).await.unwrap());
        let mut stream = js.get_stream(CHUNKS_STREAM).await.unwrap();
        let state = stream.info().await.unwrap().state.clone();
        let mut out = Vec::new();
        for seq in state.first_sequence..=state.last_sequence {
            if state.messages == 0 {
                break;
            }
            let message = stream.get_raw_message(seq).await.unwrap();
            out.push(serde_json::from_slice(&message.payload).unwrap());
        }
        out
    }
}

/// One valid chat-completions request line.
pub fn chat_line(i: usize) -> String {
    json!({
        "custom_id": format!("req-{i}"),
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "llama3.2:1b", "messages": [{"role": "user", "content": format!("Say {i}")}]},
    })
    .to_string()
}

/// A file of `n` valid requests, newline-terminated.
pub fn chat_file(n: usize) -> Vec<u8> {
    (0..n).map(|i| chat_line(i) + "\n").collect::<String>().into_bytes()
}

/// Asserts an error response: its status, and the OpenAI error object's fields.
pub async fn assert_error(
    response: reqwest::Response,
    status: u16,
    code: Option<&str>,
    param: Option<&str>,
) -> String {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    assert!(error["message"].is_string(), "{body}");
    assert!(error["type"].is_string(), "{body}");
    assert_eq!(error["code"].as_str(), code, "{body}");
    assert_eq!(error["param"].as_str(), param, "{body}");
    error["message"].as_str().unwrap().to_owned()
}
