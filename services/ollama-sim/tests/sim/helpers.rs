//! A simulator spawned per test, with a client and request helpers.

use std::time::Duration;

use ollama_sim::{SimConfig, SimHandle, spawn};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub const MODEL: &str = "llama3.2:1b";

pub struct TestSim {
    pub sim: SimHandle,
    pub client: reqwest::Client,
}

impl TestSim {
    pub async fn start(config: SimConfig) -> Self {
        let sim = spawn(config).await.unwrap();
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        Self { sim, client }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.url)
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let resp = self.client.post(self.url(path)).json(&body).send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap())
    }

    /// A POST whose answer is kept as sent: status, content type and exact body text.
    pub async fn post_raw(&self, path: &str, body: Value) -> (StatusCode, String, String) {
        let resp = self.client.post(self.url(path)).json(&body).send().await.unwrap();
        let status = resp.status();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, content_type, resp.text().await.unwrap())
    }

    /// The loaded model `name` as /sim/state shows it, if loaded.
    pub async fn loaded(&self, name: &str) -> Option<Value> {
        let state = self.state().await;
        state["loaded_models"].as_array().unwrap().iter().find(|m| m["name"] == name).cloned()
    }

    pub async fn get(&self, path: &str) -> Value {
        let resp = self.client.get(self.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "GET {path}");
        resp.json().await.unwrap()
    }

    /// A non-streaming /api/chat with one user message; `extra` fields are merged in.
    pub async fn chat(&self, content: &str, extra: Value) -> (StatusCode, Value) {
        self.post("/api/chat", chat_body(content, extra)).await
    }

    /// As [`chat`], asserting 200.
    pub async fn chat_ok(&self, content: &str, extra: Value) -> Value {
        let (status, body) = self.chat(content, extra).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub async fn state(&self) -> Value {
        self.get("/sim/state").await
    }

    pub async fn ps(&self) -> Vec<Value> {
        self.get("/api/ps").await["models"].as_array().unwrap().clone()
    }
}

pub fn chat_body(content: &str, extra: Value) -> Value {
    let mut body = json!({
        "model": MODEL,
        "messages": [{"role": "user", "content": content}],
        "stream": false,
    });
    if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
        b.extend(extra);
    }
    body
}

/// The keys of a JSON object, sorted.
pub fn keys(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

pub fn ms(v: &Value) -> f64 {
    v.as_u64().unwrap() as f64 / 1e6
}
