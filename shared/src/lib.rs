//! Wire contracts every Nightshift service agrees on.
//!
//! # Layout
//! - [`openai`]: the OpenAI Files and Batches objects, exactly as clients see them.
//! - [`messages`]: what travels on NATS between gateway, workers and collector.
//! - [`measurements`]: what workers and the gateway measure, for the metrics service.
//! - [`reports`]: what the metrics service answers: per-batch metrics, the multi-batch report.
//! - [`subjects`]: stream, consumer and subject names.
//! - [`http`]: OpenAI-shaped errors and the API-key middleware every HTTP service shares.
//! - [`jetstream`]: the streams, created idempotently.
//! - [`queue`]: the queue interface, on JetStream or in-process (standalone mode).
//! - [`auth`]: API keys, the same for every HTTP service.
//! - [`clock`]: Unix time in the units the services store.
//! - [`config`]: connection settings every service flattens into its own config.
//! - [`db`]: one handle on Postgres or SQLite, and the macro that runs a statement on either.
//! - [`telemetry`]: tracing setup, done once per process.
//! - [`process`]: start-up settings of long-running services (the allocator's arenas).
//!
//! No business logic lives here: only the shapes the services exchange.

pub mod auth;
pub mod clock;
pub mod config;
pub mod db;
pub mod http;
pub mod jetstream;
pub mod measurements;
pub mod messages;
pub mod openai;
pub mod process;
pub mod queue;
pub mod reports;
pub mod subjects;
pub mod telemetry;
