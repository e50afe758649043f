//! Integration tests: the simulator as an HTTP client sees it.

// clippy's allow-unwrap-in-tests covers #[test] functions only, not the shared helpers.
#![allow(clippy::unwrap_used)]

mod control;
mod defaults;
mod determinism;
mod embed;
mod faults;
mod helpers;
mod keep_alive;
mod listing;
mod load;
mod logprobs;
mod openai_compat;
mod options;
mod queueing;
mod shapes;
mod timing;
mod tools;
