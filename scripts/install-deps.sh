#!/usr/bin/env bash
# Installs what the test suite needs and a clean machine lacks, from the package registries only,
# and starts the local Postgres if it is down. Safe to run again: each step is skipped when its
# result is already there. Used by scripts/test.sh (the README's test command) and .ci/run.
#
# - Debian: PostgreSQL, Python 3 with pip, curl, Chromium (the HTML report's browser test), and
#   cmake, ninja and g++ (to build llama.cpp's llama-server);
# - PyPI: the OpenAI SDK (the SDK tests parse our output with its types) and PyYAML
#   (scripts/check-compose.py);
# - the cache (NIGHTSHIFT_CACHE, default ~/.cache/nightshift): nats-server 2.15.1
#   (scripts/nats-server.sh) and llama-server with Gemma 3 270M (scripts/real-model.sh; its first
#   build takes 15-25 min on 2 cores, then it is reused).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n=== %s\n' "$*" >&2; }

need_apt=()
command -v pg_ctlcluster >/dev/null || need_apt+=(postgresql)
command -v python3 >/dev/null || need_apt+=(python3 python3-pip)
command -v curl >/dev/null || need_apt+=(curl)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v cmake >/dev/null || need_apt+=(cmake)
command -v ninja >/dev/null || need_apt+=(ninja-build)
command -v c++ >/dev/null || need_apt+=(g++)
if ((${#need_apt[@]})); then
    log "installing ${need_apt[*]} (Debian)"
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${need_apt[@]}"
fi

pip_install() {
    python3 -m pip install -q "$@" 2>/dev/null || python3 -m pip install -q --break-system-packages "$@"
}
if ! python3 -c 'import openai' 2>/dev/null; then
    log "installing the OpenAI Python SDK"
    pip_install openai
fi
if ! python3 -c 'import yaml' 2>/dev/null; then
    log "installing PyYAML"
    pip_install pyyaml
fi

scripts/nats-server.sh install >/dev/null
scripts/real-model.sh install

if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    log "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    for _ in $(seq 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432 -q || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
