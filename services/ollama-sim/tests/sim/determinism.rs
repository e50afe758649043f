//! The same request always gets the same answer; num_predict caps the length.

use ollama_sim::SimConfig;
use serde_json::json;

use crate::helpers::TestSim;

#[tokio::test]
async fn same_request_twice_gives_same_content_and_counts() {
    let app = TestSim::start(SimConfig::zero_latency()).await;
    let other = TestSim::start(SimConfig::zero_latency()).await;

    let a = app.chat_ok("tell me a story", json!({"options": {"seed": 3}})).await;
    let b = app.chat_ok("tell me a story", json!({"options": {"seed": 3}})).await;
    let c = other.chat_ok("tell me a story", json!({"options": {"seed": 3}})).await;

    for field in ["eval_count", "prompt_eval_count"] {
        assert_eq!(a[field], b[field]);
        assert_eq!(a[field], c[field]);
    }
    assert_eq!(a["message"], b["message"]);
    assert_eq!(a["message"], c["message"]);

    let different = app.chat_ok("tell me another story", json!({"options": {"seed": 3}})).await;
    assert_ne!(a["message"], different["message"]);
}

#[tokio::test]
async fn num_predict_caps_eval_count_and_reports_length() {
    let app = TestSim::start(SimConfig::zero_latency()).await;

    let capped = app.chat_ok("hi", json!({"options": {"num_predict": 4}})).await;

    assert_eq!(capped["eval_count"], 4);
    assert_eq!(capped["done_reason"], "length");
    assert_eq!(capped["message"]["content"].as_str().unwrap().split(' ').count(), 4);

    let uncapped = app.chat_ok("hi", json!({"options": {"num_predict": 1000}})).await;
    assert_eq!(uncapped["done_reason"], "stop");
    assert!(uncapped["eval_count"].as_u64().unwrap() <= 64);
}
