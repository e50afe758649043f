//! The Nightshift worker: pulls chunks from JetStream, runs their requests on a model server,
//! publishes one result per request.
//!
//! # Layout
//! - [`backend`]: the model server clients (Ollama's native API, any OpenAI-compatible server),
//!   with retries, timeouts and adaptive concurrency.

pub mod backend;
