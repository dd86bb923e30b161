#!/usr/bin/env bash
# Measures the release binary: stripped size, idle RSS after start, and p50/p99 latency of
# the dashboard (session cookie) and /api/v1/status (bearer token) under a bounded
# loopback load from wrk (4 connections, 1 thread, 10 s each). Loopback only.
# Usage: benches/web_latency.sh [path/to/gatewatch]   (default: target/release/gatewatch)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/gatewatch}
PORT=${PORT:-18443}
command -v wrk >/dev/null || { echo "needs wrk: apt-get install -y wrk" >&2; exit 1; }
[ -x "$BIN" ] || cargo build --release
DATA=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$DATA"' EXIT

echo "bench-password-1234" | "$BIN" user add admin --role admin --data-dir "$DATA" >/dev/null
TOKEN=$("$BIN" token create --name bench --role viewer --data-dir "$DATA" 2>/dev/null)
"$BIN" serve --data-dir "$DATA" --listen 127.0.0.1:$PORT >"$DATA/out.log" 2>&1 &
PID=$!
for _ in $(seq 50); do curl -sk -o /dev/null https://127.0.0.1:$PORT/healthz && break; sleep 0.1; done
sleep 2
echo "binary: $BIN $(stat -c %s "$BIN") bytes ($(( $(stat -c %s "$BIN") / 1024 )) KiB)"
echo "idle RSS after start: $(awk '/VmRSS/ {print $2, $3}' /proc/$PID/status)"

JAR="$DATA/jar"
CSRF=$(curl -sk -c "$JAR" https://127.0.0.1:$PORT/login | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -1)
curl -sk -b "$JAR" -c "$JAR" -o /dev/null -d "csrf=$CSRF&username=admin&password=bench-password-1234&next=/" https://127.0.0.1:$PORT/login
COOKIE=$(awk '$6=="gw_session" {print $7}' "$JAR")
[ -n "$COOKIE" ] || { echo "login failed" >&2; exit 1; }

run() {
    local name=$1; shift
    echo "== $name"
    wrk -t1 -c4 -d10s --latency "$@" | grep -E "Requests/sec|50%|99%|Non-2xx|Socket errors"
}
run "dashboard GET / (session)" -H "Cookie: gw_session=$COOKIE" https://127.0.0.1:$PORT/
run "API GET /api/v1/status (bearer)" -H "Authorization: Bearer $TOKEN" https://127.0.0.1:$PORT/api/v1/status
echo "RSS after load: $(awk '/VmRSS/ {print $2, $3}' /proc/$PID/status)"
