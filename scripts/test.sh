#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, and the whole test suite against the local
# Postgres and a test-owned nats-server per test. Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

# #[sqlx::test] creates a fresh database per test through this server.
export DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace "$@"
