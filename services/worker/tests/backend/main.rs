//! The backend client against a scripted model server: what it sends, what it makes of the
//! answers, and how it fails.

// Test helpers outside #[test] functions: a failed setup should panic loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;
mod ollama;
mod openai;
mod retries;
