#!/usr/bin/env bash
# Builds gatewatch (release) and runs the server with the embedded default config:
# https://127.0.0.1:8443/, data in ./gatewatch-data (or /var/db/gatewatch as root).
# Extra arguments go to `gatewatch serve`, e.g. ./run.sh --listen 0.0.0.0:8443
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust first (https://rustup.rs), e.g." >&2
    echo "  curl --proto '=https' -sSf https://sh.rustup.rs | sh" >&2
    exit 1
fi
# Build needs: a C compiler (LMDB) and libpcap's headers (live capture).
if ! command -v cc >/dev/null 2>&1 || [ ! -e /usr/include/pcap/pcap.h ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update && apt-get install -y --no-install-recommends build-essential pkg-config libpcap-dev
    else
        echo "a C compiler and libpcap's headers are needed: sudo apt-get install build-essential pkg-config libpcap-dev" >&2
        exit 1
    fi
fi
exec cargo run --release --locked -- serve "$@"
