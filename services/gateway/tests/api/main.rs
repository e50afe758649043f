//! Integration tests of the gateway against a real Postgres (`#[sqlx::test]`, a fresh database per
//! test) and a test-owned `nats-server`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod batches;
mod errors;
mod files;
mod health;
mod helpers;
mod poison;
mod resume;
mod sdk;
mod validation;
