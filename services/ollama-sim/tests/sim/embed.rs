//! /api/embed's input handling, `dimensions` and answer fields as in Ollama's EmbedHandler.

use ollama_sim::SimConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{MODEL, TestSim, keys};

fn vectors(body: &Value) -> Vec<Vec<f64>> {
    body["embeddings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect())
        .collect()
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

#[tokio::test]
async fn empty_strings_inside_an_input_array_are_embedded() {
    let app = TestSim::start(SimConfig::zero_latency()).await;

    let (status, body) =
        app.post("/api/embed", json!({"model": MODEL, "input": ["a", "", "b"]})).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(vectors(&body).len(), 3);
    assert_eq!(
        keys(&body),
        ["embeddings", "load_duration", "model", "prompt_eval_count", "total_duration"]
    );
}

#[tokio::test]
async fn no_input_loads_the_model_and_answers_no_vectors() {
    let config = SimConfig { load_ms: 60, ..SimConfig::zero_latency() };
    let app = TestSim::start(config).await;

    for body in [
        json!({"model": MODEL, "input": ""}),
        json!({"model": MODEL, "input": []}),
        json!({"model": "other:1b"}),
    ] {
        let (status, answer) = app.post("/api/embed", body.clone()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer, json!({"model": body["model"], "embeddings": []}));
    }
    assert_eq!(app.ps().await.len(), 2);
}

#[tokio::test]
async fn a_non_string_input_is_400_even_for_an_unknown_model() {
    let config = SimConfig { any_model: false, ..SimConfig::zero_latency() };
    let app = TestSim::start(config).await;

    for input in [json!(["a", 1]), json!(7), json!({"text": "a"})] {
        let (status, body) = app.post("/api/embed", json!({"model": "nope", "input": input})).await;
        assert_eq!(
            (status, body),
            (StatusCode::BAD_REQUEST, json!({"error": "invalid input type"}))
        );
    }
}

#[tokio::test]
async fn dimensions_cut_and_renormalise_and_out_of_range_is_ignored() {
    let config = SimConfig { embed_dim: 8, ..SimConfig::zero_latency() };
    let app = TestSim::start(config).await;
    let embed = |dimensions: Value| {
        app.post("/api/embed", json!({"model": MODEL, "input": "hello", "dimensions": dimensions}))
    };

    let (_, full) = embed(Value::Null).await;
    let (_, cut) = embed(json!(3)).await;

    let full = &vectors(&full)[0];
    let cut = &vectors(&cut)[0];
    assert_eq!((full.len(), cut.len()), (8, 3));
    assert!((norm(cut) - 1.0).abs() < 1e-5 && (norm(full) - 1.0).abs() < 1e-5);
    // The cut vector is the full one's head, scaled back to unit length.
    let scale = norm(&full[..3]);
    for (c, f) in cut.iter().zip(full) {
        assert!((c * scale - f).abs() < 1e-5, "{cut:?} vs {full:?}");
    }
    for ignored in [json!(8), json!(100), json!(0), json!(-1)] {
        let (status, body) = embed(ignored.clone()).await;
        assert_eq!(status, StatusCode::OK, "{ignored}");
        assert_eq!(&vectors(&body)[0], full, "{ignored}");
    }
}

#[tokio::test]
async fn v1_embeddings_embed_an_empty_string_and_refuse_no_input() {
    let app = TestSim::start(SimConfig::zero_latency()).await;

    let (status, body) = app.post("/v1/embeddings", json!({"model": MODEL, "input": ""})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"].as_array().unwrap().len(), 1);

    for input in [json!([]), Value::Null] {
        let (status, body) =
            app.post("/v1/embeddings", json!({"model": MODEL, "input": input})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["message"], "invalid input");
    }
    let (status, body) = app
        .post("/v1/embeddings", json!({"model": MODEL, "input": "a", "encoding_format": "hex"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["message"],
        "Invalid value for 'encoding_format' = hex. Supported values: ['float', 'base64']."
    );
}
