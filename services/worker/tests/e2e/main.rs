//! End to end: gateway, JetStream, worker processes and `ollama-sim`, checking that every request
//! of a batch ends up exactly once in its output or error file, whatever is killed on the way.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cancel;
mod faults;
mod pipeline;
