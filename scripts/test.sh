#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, and the whole test suite against the local
# Postgres and a test-owned nats-server per test. Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

# #[sqlx::test] creates a fresh database per test through this server.
export DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --lib --bins --tests "$@" 2>&1 | tee "$log"
# One closing line for the whole suite, summed over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "total: %d passed, %d failed\n", p, f }' "$log"
