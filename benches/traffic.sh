#!/usr/bin/env bash
# Throughput of `gatewatch pcap` (every analysis on) against tshark and tcpdump on the same
# >= 1 M packet file, in one run. Prints packets/s of each and the ratios.
# Needs: tshark, tcpdump, editcap/mergecap (apt-get install -y tshark tcpdump).
# Usage: benches/traffic.sh [path/to/gatewatch]   (default: target/release/gatewatch)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/gatewatch}
[ -x "$BIN" ] || cargo build --release
for t in tshark tcpdump editcap mergecap; do
    command -v "$t" >/dev/null || { echo "needs $t: apt-get install -y tshark tcpdump" >&2; exit 1; }
done
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
BIG="$WORK/big.pcap"
bash ../shared/testdata/pcap/gen_big_pcap.sh "$BIG" >/dev/null 2>&1
PACKETS=$("$BIN" pcap --json "$BIG" | python3 -c 'import json,sys; print(json.load(sys.stdin)["packets"])')
[ "$PACKETS" -ge 1000000 ] || { echo "only $PACKETS packets in the test file" >&2; exit 1; }
echo "file: $PACKETS packets, $(( $(stat -c %s "$BIG") / 1048576 )) MiB"

# Best of 3 wall-clock runs, in seconds.
best() {
    local best=""
    for _ in 1 2 3; do
        local t0 t1
        t0=$(date +%s.%N)
        "$@" >/dev/null 2>&1
        t1=$(date +%s.%N)
        best=$(python3 -c "a=$t1-$t0; b='$best'; print(a if not b else min(a, float(b)))")
    done
    echo "$best"
}
T_GW=$(best "$BIN" pcap --json "$BIG")
# Every analysis on: direction (host spec), geo/ASN lookups (MaxMind test databases).
GEO=../shared/testdata/geo
T_GW_ALL=$(best "$BIN" pcap --json --host-spec 10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7 \
    --geo-city "$GEO/GeoLite2-City-Test.mmdb" --geo-asn "$GEO/GeoLite2-ASN-Test.mmdb" "$BIG")
T_TSHARK=$(best tshark -q -z io,phs -r "$BIG")
T_TCPDUMP=$(best tcpdump -nr "$BIG")
python3 - "$PACKETS" "$T_GW" "$T_GW_ALL" "$T_TSHARK" "$T_TCPDUMP" <<'PY'
import sys
n, gw, gw_all, ts, td = int(sys.argv[1]), *map(float, sys.argv[2:])
for name, t in [("gatewatch pcap --json", gw), ("  + host spec, geo, ASN", gw_all),
                ("tshark -q -z io,phs", ts), ("tcpdump -nr", td)]:
    print(f"{name:24} {t:7.2f} s  {n / t / 1e6:6.2f} M packets/s")
print(f"gatewatch vs tshark: {ts / gw:.1f}x   gatewatch vs tcpdump: {td / gw:.1f}x")
print(f"with every analysis: vs tshark {ts / gw_all:.1f}x   vs tcpdump {td / gw_all:.1f}x")
PY
