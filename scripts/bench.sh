#!/usr/bin/env bash
# Benchmarks the whole stack on this machine with nightshift-bench and records the figures.
#
#   scripts/bench.sh                    build release, measure every figure on the distributed
#                                       and the standalone deployment side by side, print the
#                                       report, append it to BENCHMARKS.md with the machine,
#                                       date and commit
#   scripts/bench.sh --quick            small sizes: a smoke test of the bench, printed only
#   scripts/bench.sh --only ceiling --deployments standalone
#                                       any nightshift-bench flag passes through (--help lists them)
#
# Each distributed figure gets its own Postgres database on BENCH_DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/postgres; dropped at the end) and its own nats-server
# (NATS_SERVER_BIN, default the 2.15.1 scripts/nats-server.sh installs) on a free port; each standalone figure one
# `nightshift standalone` on a temporary data directory. Nothing touches :4080/:4081 or the
# local NATS. Logs and per-batch timelines stay in target/bench/<timestamp>/.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

quick=0
for arg in "$@"; do [[ "$arg" == --quick ]] && quick=1; done

# A current nats-server, and the real model server of figure 5 (both cached after the first run).
NATS_SERVER_BIN="${NATS_SERVER_BIN:-$(scripts/nats-server.sh install)}"
export NATS_SERVER_BIN
scripts/real-model.sh install

echo "building release binaries..." >&2
cargo build --release -q -p nightshift-gateway -p nightshift-worker -p nightshift-metrics \
    -p nightshift -p ollama-sim -p nightshift-bench

report="$(mktemp)"
trap 'rm -f "$report"' EXIT
status=0
target/release/nightshift-bench --bin-dir target/release "$@" >"$report" || status=$?
cat "$report"

if ((quick)) || [[ ! -s "$report" ]]; then
    exit "$status"
fi
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD 2>/dev/null || commit="$commit + uncommitted changes"
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
[[ -f BENCHMARKS.md ]] || printf '# Benchmarks\n\nAppended by `scripts/bench.sh`, newest last.\n' >BENCHMARKS.md
{
    echo
    echo "## $(date -u '+%Y-%m-%d %H:%M UTC'), $commit"
    echo
    echo "- machine: \`$(uname -a)\`"
    echo "- CPU: $cpu, $(nproc) cores; memory $(free -m | awk '/^Mem:/ {printf "%.1f GiB", $2 / 1024}')"
    echo "- command: \`scripts/bench.sh${*:+ $*}\`"
    echo
    cat "$report"
} >>BENCHMARKS.md
echo "appended to BENCHMARKS.md" >&2
exit "$status"
