#!/usr/bin/env bash
# Runs every check CI runs: installs what a clean machine lacks (scripts/install-deps.sh), then
# formatting, lints, and the whole test suite against the local Postgres, a test-owned
# nats-server per test and a real llama-server where a test asks for one. Every test binary runs
# even when one fails; the last line sums them all.
#   scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

# #[sqlx::test] creates a fresh database per test through this server.
export DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
# The nats-server and the real model server the tests start.
NATS_SERVER_BIN="$(scripts/nats-server.sh path)"
export NATS_SERVER_BIN
{ read -r LLAMA_SERVER_BIN; read -r LLAMA_MODEL; } < <(scripts/real-model.sh paths)
export LLAMA_SERVER_BIN LLAMA_MODEL

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --lib --bins --tests --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole suite, summed over every test binary.
awk -v status="$status" '
    /^test result:/ { p += $4; f += $6 }
    END {
        note = (status != 0 && f == 0) ? " (cargo failed before a test did: see above)" : ""
        printf "total: %d passed, %d failed%s\n", p, f, note
    }' "$log"
exit "$status"
