#!/usr/bin/env bash
# Frame cost of the traffic world map with 2,000 arcs in headless Chromium: script time per
# frame, script + canvas rasterisation per frame, requestAnimationFrame interval, long
# animation frames, and the interval ratio against the same browser's empty rAF loop on a
# blank page (benches/map_frames.py does the measuring). Loopback only.
# Usage: benches/map_frames.sh [path/to/gatewatch] [map_frames.py options, e.g. --arcs 5000]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/gatewatch}
shift || true
PORT=${PORT:-18444}
for t in /usr/bin/chromium /usr/bin/chromedriver python3; do
    command -v "$t" >/dev/null || { echo "needs $t: apt-get install -y chromium chromium-driver python3" >&2; exit 1; }
done
[ -x "$BIN" ] || cargo build --release
DATA=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$DATA"' EXIT

# The map's ?demo=N feed is synthetic: no capture, no syslog needed.
printf '[capture]\nenabled = false\n\n[syslog]\nenabled = false\n' >"$DATA/gatewatch.toml"
echo "bench-password-1234" | "$BIN" user add admin --role admin --data-dir "$DATA" >/dev/null
"$BIN" serve --config "$DATA/gatewatch.toml" --data-dir "$DATA" --listen 127.0.0.1:$PORT >"$DATA/out.log" 2>&1 &
PID=$!
for _ in $(seq 50); do curl -sk -o /dev/null https://127.0.0.1:$PORT/healthz && break; sleep 0.1; done

JAR="$DATA/jar"
CSRF=$(curl -sk -c "$JAR" https://127.0.0.1:$PORT/login | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -1)
curl -sk -b "$JAR" -c "$JAR" -o /dev/null -d "csrf=$CSRF&username=admin&password=bench-password-1234&next=/" https://127.0.0.1:$PORT/login
COOKIE=$(awk '$6=="gw_session" {print $7}' "$JAR")
[ -n "$COOKIE" ] || { echo "login failed" >&2; exit 1; }

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $(/usr/bin/chromium --version 2>/dev/null)"
python3 benches/map_frames.py "https://127.0.0.1:$PORT" "$COOKIE" "$@"
