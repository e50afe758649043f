//! Integration tests of `batchctl`: the real binary against a real in-process gateway, on a fresh
//! Postgres database per test (`#[sqlx::test]`) and a test-owned `nats-server`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod batches;
mod download;
mod errors;
mod generate;
mod helpers;
mod multi_batch;
mod report_html;
mod wait;
