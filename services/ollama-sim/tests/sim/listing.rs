//! /api/ps as Ollama shows it: longest time left first, with the runner's context length.

use ollama_sim::SimConfig;
use serde_json::json;

use crate::helpers::TestSim;

#[tokio::test]
async fn ps_lists_the_longest_time_left_first_with_ollamas_fields() {
    let app = TestSim::start(SimConfig::zero_latency()).await;
    for (model, keep_alive) in [("a:1b", json!("10m")), ("b:1b", json!(-1)), ("c:1b", json!("1h"))]
    {
        app.chat_ok("x", json!({"model": model, "keep_alive": keep_alive})).await;
    }

    let ps = app.ps().await;

    let names: Vec<&str> = ps.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["b:1b", "c:1b", "a:1b"]);
    for m in &ps {
        assert_eq!(m["model"], m["name"]);
        assert_eq!(m["context_length"], 4096);
        assert_eq!(m["size"], m["size_vram"]);
        assert_eq!(m["digest"].as_str().unwrap().len(), 64);
        assert_eq!(m["details"]["parent_model"], "");
        assert_eq!(m["details"]["format"], "gguf");
        assert!(m["expires_at"].as_str().unwrap().ends_with('Z'));
    }
}
