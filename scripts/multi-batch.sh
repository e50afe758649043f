#!/usr/bin/env bash
# The main job: the test plan's multi-batch scalability test, end to end on this machine.
#
# Needs only the Rust toolchain. Builds Nightshift, starts it standalone (one process: gateway,
# worker and metrics on an embedded queue and SQLite, with Ollama at OLLAMA_URL or, when none
# answers there, the simulator), generates a synthetic batch, runs BATCHES batches of it back to
# back, prints the summary and the report's path, and stops what it started.
# If a gateway already answers at GATEWAY_ADDR, the test runs against it instead (for the
# distributed deployment: scripts/local-stack.sh up, or docker compose up).
#
#   scripts/multi-batch.sh [extra `batchctl multi-batch` flags]
#
#   BATCHES=3 REQUESTS=500 MODEL=llama3.2:1b OUT_DIR=results   (defaults)
#   CARGO_PROFILE=release                                      (the build profile)
# Exit code: 0 every criterion passed, 1 one failed, 2 the run could not be made.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
batches="${BATCHES:-3}"
requests="${REQUESTS:-500}"
model="${MODEL:-llama3.2:1b}"
out="${OUT_DIR:-$repo/results}"
profile="${CARGO_PROFILE:-release}"
target="${CARGO_TARGET_DIR:-$repo/target}"
bin="$target/$([[ "$profile" == dev ]] && echo debug || echo "$profile")"

# Where the services listen, as a client reaches them (0.0.0.0 binds every interface).
gateway_addr="${GATEWAY_ADDR:-127.0.0.1:4080}"
metrics_addr="${METRICS_ADDR:-127.0.0.1:4081}"
export NIGHTSHIFT_URL="${NIGHTSHIFT_URL:-http://${gateway_addr/0.0.0.0/127.0.0.1}}"
export NIGHTSHIFT_METRICS_URL="${NIGHTSHIFT_METRICS_URL:-http://${metrics_addr/0.0.0.0/127.0.0.1}}"

ready() { curl -fsS -o /dev/null "$NIGHTSHIFT_URL/readyz" 2>/dev/null; }

echo "building Nightshift ($profile)..."
(cd "$repo" && cargo build --profile "$profile" -q -p nightshift -p batchctl)

mkdir -p "$out"
pid=""
stop() {
    if [[ -n "$pid" ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        echo "(the standalone Nightshift this script started is stopped; its data: $data)"
    fi
}
trap stop EXIT

if ready; then
    echo "using the gateway already running at $NIGHTSHIFT_URL"
else
    data="${NIGHTSHIFT_DATA_DIR:-$out/standalone-data}"
    # Sized like a small GPU server: the simulator (when no Ollama answers) serves 8 requests at
    # once and the worker keeps 8 in flight; the model loads at start, so batch one does not pay.
    export OLLAMA_SIM_PARALLEL="${OLLAMA_SIM_PARALLEL:-8}"
    # The simulator, like Ollama, serves only the models it has: give it the one asked for.
    export OLLAMA_SIM_MODELS="${OLLAMA_SIM_MODELS:-$model}"
    export WORKER_CONCURRENCY="${WORKER_CONCURRENCY:-8}"
    export WORKER_MODELS="${WORKER_MODELS:-$model}"
    export GATEWAY_ADDR="$gateway_addr" METRICS_ADDR="$metrics_addr"
    "$bin/nightshift" standalone --data-dir "$data" 2>"$out/nightshift.log" &
    pid=$!
    for _ in $(seq 1 300); do
        ready && break
        if ! kill -0 "$pid" 2>/dev/null; then
            pid=""
            echo "Nightshift did not start:" >&2
            tail -20 "$out/nightshift.log" >&2
            exit 2
        fi
        sleep 0.1
    done
    ready || { echo "Nightshift is not ready after 30 s; see $out/nightshift.log" >&2; exit 2; }
    # The worker samples VRAM every WORKER_GPU_SAMPLE_SECS (1 s): let a first sample reach the
    # metrics service, so batch one has a "before" reading.
    sleep 2
    sed -n '/^Nightshift standalone/,/^  data:/p' "$out/nightshift.log"
fi

input="$out/batch_${requests}.jsonl"
"$bin/batchctl" gen --requests "$requests" --model "$model" --out "$input"
set +e
"$bin/batchctl" multi-batch --batches "$batches" --input "$input" --out "$out" \
    --pause "${PAUSE:-2s}" "$@"
code=$?
set -e
exit "$code"
