//! `batchctl gen`: synthetic batch files.

use crate::helpers::batchctl_with_env;
use serde_json::Value;
use std::collections::HashSet;

#[tokio::test]
async fn gen_writes_n_valid_requests_with_unique_ids_and_one_shared_system_prompt() {
    let args = ["gen", "--requests", "500", "--model", "llama3.2:1b", "--max-tokens", "64"];
    let run = batchctl_with_env(&[], &args).await;

    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<Value> = run.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 500);
    let ids: HashSet<&str> = lines.iter().map(|l| l["custom_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 500);
    assert!(ids.contains("request-1") && ids.contains("request-500"));
    let systems: HashSet<&str> =
        lines.iter().map(|l| l["body"]["messages"][0]["content"].as_str().unwrap()).collect();
    assert_eq!(systems.len(), 1, "one system prompt shared by all");
    let users: HashSet<&str> =
        lines.iter().map(|l| l["body"]["messages"][1]["content"].as_str().unwrap()).collect();
    assert!(users.len() > 250, "user prompts vary: {} distinct of 500", users.len());
    for line in &lines {
        assert_eq!(line["method"], "POST");
        assert_eq!(line["url"], "/v1/chat/completions");
        assert_eq!(line["body"]["model"], "llama3.2:1b");
        assert_eq!(line["body"]["max_tokens"], 64);
        assert_eq!(line["body"]["messages"][0]["role"], "system");
        assert_eq!(line["body"]["messages"][1]["role"], "user");
    }
}

#[tokio::test]
async fn gen_writes_the_same_file_for_the_same_seed_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    for (name, seed) in [("a.jsonl", "7"), ("b.jsonl", "7"), ("c.jsonl", "8")] {
        let args =
            ["gen", "--requests", "100", "--model", "m", "--seed", seed, "--out", &path(name)];
        let run = batchctl_with_env(&[], &args).await;
        assert_eq!(run.code, 0, "{run:?}");
        assert!(run.stdout.is_empty(), "the file goes to --out, not stdout");
    }
    let read = |name: &str| std::fs::read(path(name)).unwrap();
    assert_eq!(read("a.jsonl"), read("b.jsonl"));
    assert_ne!(read("a.jsonl"), read("c.jsonl"));
}
