#!/usr/bin/env bash
# Builds and runs the distributed stack on this machine: gateway (:4080), metrics (:4081),
# WORKERS workers, and ollama-sim unless OLLAMA_URL points at a real Ollama. Uses the local
# NATS and Postgres (or NATS_URL / DATABASE_URL).
#
#   scripts/local-stack.sh up       build, start, wait until ready, print the URLs
#   scripts/local-stack.sh down     stop exactly what `up` started
#   scripts/local-stack.sh status   show what is running
#
# Logs and pid files live in $NIGHTSHIFT_STACK_DIR (default .stack/ in the repo).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
dir="${NIGHTSHIFT_STACK_DIR:-$repo/.stack}"
bin="$repo/target/release"

export NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/nightshift}"
export GATEWAY_ADDR="${GATEWAY_ADDR:-127.0.0.1:4080}"
export METRICS_ADDR="${METRICS_ADDR:-127.0.0.1:4081}"
workers="${WORKERS:-2}"

die() { echo "local-stack: $*" >&2; exit 1; }

# host:port of a URL like nats://h:p or postgres://u@h:p/db.
host_port() { local rest="${1#*://}"; rest="${rest#*@}"; echo "${rest%%/*}"; }

reachable() {
    local hp="$1" host port
    host="${hp%:*}"; port="${hp##*:}"
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

wait_http() {
    local url="$1" what="$2" pidfile="$3"
    for _ in $(seq 120); do
        if curl -fsS -o /dev/null "$url" 2>/dev/null; then return 0; fi
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            die "$what exited; see $dir/$(basename "$pidfile" .pid).log"
        fi
        sleep 0.5
    done
    die "$what did not become ready at $url; see $dir/$(basename "$pidfile" .pid).log"
}

start() {
    local name="$1"; shift
    "$@" >"$dir/$name.log" 2>&1 &
    echo $! >"$dir/$name.pid"
}

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

up() {
    mkdir -p "$dir"
    for pid in "$dir"/*.pid; do
        [[ -e "$pid" ]] || continue
        alive "$pid" && die "already running ($(basename "$pid" .pid)); run 'scripts/local-stack.sh down' first"
        rm -f "$pid"
    done
    reachable "$(host_port "$NATS_URL")" || die "NATS is not reachable at $NATS_URL (start nats-server -js, or set NATS_URL)"
    reachable "$(host_port "$DATABASE_URL")" || die "Postgres is not reachable at $(host_port "$DATABASE_URL") (start it, or set DATABASE_URL)"

    echo "building release binaries..."
    (cd "$repo" && cargo build --release -q -p nightshift-gateway -p nightshift-worker \
        -p nightshift-metrics -p ollama-sim -p batchctl)

    if [[ -z "${OLLAMA_URL:-}" ]]; then
        export OLLAMA_SIM_ADDR="${OLLAMA_SIM_ADDR:-127.0.0.1:11435}"
        export OLLAMA_URL="http://$OLLAMA_SIM_ADDR"
        # Like a small GPU server with OLLAMA_NUM_PARALLEL=8 (the simulator defaults to
        # Ollama's 1), holding the model the workers load.
        export OLLAMA_SIM_PARALLEL="${OLLAMA_SIM_PARALLEL:-8}"
        export OLLAMA_SIM_MODELS="${OLLAMA_SIM_MODELS:-${WORKER_MODELS:-llama3.2:1b}}"
        start ollama-sim "$bin/ollama-sim"
        wait_http "$OLLAMA_URL/api/version" "ollama-sim" "$dir/ollama-sim.pid"
        backend="ollama-sim at $OLLAMA_URL (a SIMULATOR: no real model answers)"
    else
        curl -fsS -o /dev/null "$OLLAMA_URL/api/version" 2>/dev/null \
            || echo "warning: nothing answers at OLLAMA_URL=$OLLAMA_URL yet" >&2
        backend="Ollama at $OLLAMA_URL"
    fi

    start gateway "$bin/nightshift-gateway"
    wait_http "http://$GATEWAY_ADDR/readyz" "the gateway" "$dir/gateway.pid"
    start metrics "$bin/nightshift-metrics"
    wait_http "http://$METRICS_ADDR/healthz" "the metrics service" "$dir/metrics.pid"
    for i in $(seq "$workers"); do
        WORKER_ID="${WORKER_ID_PREFIX:-local}-$i" start "worker-$i" "$bin/nightshift-worker"
    done
    sleep 1
    for i in $(seq "$workers"); do
        alive "$dir/worker-$i.pid" || die "worker $i exited; see $dir/worker-$i.log"
    done

    cat <<MSG
Nightshift is up.
  gateway   http://$GATEWAY_ADDR/v1   (OpenAI base_url)
  metrics   http://$METRICS_ADDR
  workers   $workers, backend: $backend
  logs      $dir/*.log
Stop it with: scripts/local-stack.sh down
MSG
}

down() {
    local any=0
    for pid in "$dir"/*.pid; do
        [[ -e "$pid" ]] || continue
        any=1
        local name p
        name="$(basename "$pid" .pid)"; p="$(cat "$pid")"
        if kill -0 "$p" 2>/dev/null; then
            kill -TERM "$p" 2>/dev/null || true
            for _ in $(seq 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
            kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
            echo "stopped $name ($p)"
        fi
        rm -f "$pid"
    done
    ((any)) || echo "nothing to stop"
}

status() {
    local any=0
    for pid in "$dir"/*.pid; do
        [[ -e "$pid" ]] || continue
        any=1
        if alive "$pid"; then echo "running  $(basename "$pid" .pid) ($(cat "$pid"))";
        else echo "dead     $(basename "$pid" .pid)"; fi
    done
    ((any)) || echo "not running"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
