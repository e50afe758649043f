#!/usr/bin/env bash
# The main job: the test plan's multi-batch scalability test, end to end on this machine.
# Starts the local stack if it is not running (ollama-sim unless OLLAMA_URL is set), generates a
# synthetic batch, runs BATCHES batches of it back to back, and says where the results went.
#
#   scripts/multi-batch.sh [extra `batchctl multi-batch` flags]
#
#   BATCHES=3 REQUESTS=500 MODEL=llama3.2:1b OUT_DIR=results   (defaults)
# Exit code: 0 every criterion passed, 1 one failed, 2 the run could not be made.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
batches="${BATCHES:-3}"
requests="${REQUESTS:-500}"
model="${MODEL:-llama3.2:1b}"
out="${OUT_DIR:-$repo/results}"

started_here=0
if ! curl -fsS -o /dev/null "http://${GATEWAY_ADDR:-127.0.0.1:4080}/readyz" 2>/dev/null; then
    # Simulated Ollama sized like a small GPU server: 8 slots, 2 workers of 4; the model is
    # loaded at worker start so batch one does not pay the load.
    export OLLAMA_SIM_PARALLEL="${OLLAMA_SIM_PARALLEL:-8}"
    export WORKER_CONCURRENCY="${WORKER_CONCURRENCY:-4}"
    export WORKER_MODELS="${WORKER_MODELS:-$model}"
    "$repo/scripts/local-stack.sh" up
    started_here=1
else
    (cd "$repo" && cargo build --release -q -p batchctl)
fi
stop() { if ((started_here)) && [[ -z "${KEEP_STACK:-}" ]]; then "$repo/scripts/local-stack.sh" down >/dev/null; fi; }
trap stop EXIT

mkdir -p "$out"
input="$out/batch_${requests}.jsonl"
"$repo/target/release/batchctl" gen --requests "$requests" --model "$model" --out "$input"
set +e
"$repo/target/release/batchctl" multi-batch --batches "$batches" --input "$input" --out "$out" \
    --pause "${PAUSE:-2s}" "$@"
code=$?
set -e
((started_here)) && [[ -z "${KEEP_STACK:-}" ]] && echo "(the stack this script started is stopped; KEEP_STACK=1 keeps it)"
exit "$code"
