//! A simulator of Ollama's HTTP API, for testing and benchmarking Nightshift without a
//! GPU or model weights.
//!
//! # Layout
//! - [`config`]: every setting (flags, env `OLLAMA_SIM_*`, or a [`SimConfig`] in tests).
//! - [`state`]: the live simulator ([`SimState`]) and the `/sim/state` snapshot.
//! - `engine`: one inference through faults, model load, slot and service time.
//! - `sched`, `slots`: Ollama's scheduler (the bounded queue of requests waiting for a
//!   model load, one load at a time) and each loaded model's parallel slots.
//! - `models`, `lookup`, `faults`: loaded models with keep_alive and simulated VRAM, which
//!   models exist, and the seeded fault dice.
//! - `synth`, `plan`, `tools`, `logprobs`: deterministic answers (text, JSON, tool calls,
//!   token counts, logprobs, embeddings).
//! - `api`, `openai`, `options`, `error`, `golang`: wire types, option checks and error
//!   texts of the real server (Go's duration parsing and quoting included).
//! - `routes`: the endpoints; [`server`]: [`serve`] and [`spawn`] for tests.
//!
//! Answers are a pure function of the request (model, messages or prompt, seed, format),
//! so the same request always gets the same text and token counts.

mod api;
pub mod clock;
pub mod config;
mod engine;
mod error;
mod faults;
mod golang;
pub mod keep_alive;
mod logprobs;
mod lookup;
mod models;
mod openai;
mod options;
mod plan;
mod routes;
mod sched;
pub mod server;
mod slots;
pub mod state;
pub mod synth;
mod tools;

pub use config::{ConfigError, SimConfig};
pub use keep_alive::KeepAlive;
pub use routes::router;
pub use server::{SimHandle, serve, serve_state, spawn};
pub use state::{LoadedModel, SimCounters, SimSnapshot, SimState};
