//! Integration tests of the metrics service: telemetry published to a test-owned `nats-server`,
//! consumed into a fresh Postgres database per test (`#[sqlx::test]`), read back over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod batch_metrics;
mod errors;
mod gpus;
mod helpers;
mod reports;
