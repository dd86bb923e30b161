#!/usr/bin/env bash
# gatewatch scan against nmap on the namespace lab (../shared/netlab), in one run: wall
# time, peak RSS and the lab grader's recall for each. Traffic stays inside the lab's
# namespaces. Needs root, nmap (apt-get install -y nmap). SLOW=1 adds nmap -sT -sV
# --top-ports 1000 (about 6 minutes).
# Usage: sudo benches/scan.sh [path/to/gatewatch]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-target/release/gatewatch}")
[ -x "$BIN" ] || cargo build --release
command -v nmap >/dev/null || { echo "needs nmap: apt-get install -y nmap" >&2; exit 1; }
LAB=../shared/netlab
WORK=$(mktemp -d)
trap '"$LAB/down.sh" --quiet; rm -rf "$WORK"' EXIT
"$LAB/up.sh" --quiet
NETS="10.200.1.0/24 10.200.2.0/24"

measure() { # name outfile cmd...
    local name=$1 out=$2
    shift 2
    /usr/bin/time -f "%e %M" -o "$WORK/time" ip netns exec gw "$@" >"$out" 2>/dev/null
    read -r secs kib <"$WORK/time"
    printf '%-34s %7.1f s  %6d KiB RSS\n' "$name" "$secs" "$kib"
    echo "$secs" >"$out.secs"
}

# shellcheck disable=SC2086
measure "gatewatch scan (all phases)" "$WORK/gw.json" "$BIN" scan $NETS --json
python3 ../shared/tools/grade_scan.py /run/netlab/expected.json "$WORK/gw.json" | tail -1
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("  phases (ms):", d["phase_ms"], " warnings:", d["warnings"] or "none")' "$WORK/gw.json"
# shellcheck disable=SC2086
measure "nmap -sn (ARP ping)" "$WORK/sn.xml" nmap -sn -n -oX - $NETS
# shellcheck disable=SC2086
measure "nmap -sT -F" "$WORK/f.xml" nmap -sT -F -oX - $NETS
python3 "$LAB/grade.py" /run/netlab/expected.json nmap "$WORK/f.xml" 2>/dev/null | tail -3 || true
if [ "${SLOW:-0}" = 1 ]; then
    # shellcheck disable=SC2086
    measure "nmap -sT -sV --top-ports 1000" "$WORK/sv.xml" nmap -sT -sV --top-ports 1000 -oX - $NETS
fi
python3 - "$WORK" <<'PY'
import sys, os
w = sys.argv[1]
t = {k: float(open(os.path.join(w, f + ".secs")).read()) for k, f in
     [("gw", "gw.json"), ("sn", "sn.xml"), ("f", "f.xml")]}
print(f"gatewatch full scan / nmap -sT -F: {t['gw'] / t['f']:.2f}x the time")
if os.path.exists(os.path.join(w, "sv.xml.secs")):
    sv = float(open(os.path.join(w, "sv.xml.secs")).read())
    print(f"nmap -sT -sV --top-ports 1000 / gatewatch: {sv / t['gw']:.1f}x")
PY
