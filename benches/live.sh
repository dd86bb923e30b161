#!/usr/bin/env bash
# Live capture under load: replays a >= 1 M packet pcap with tcpreplay onto one end of a veth
# pair (in network namespaces this script creates and removes) while `gatewatch capture`
# (every analysis on) captures the other end; then the same replays with tcpdump -w /dev/null
# capturing instead, as the peer tool. Prints, per rate (--topspeed, then fixed --pps steps):
# the rate tcpreplay achieved, packets each tool saw and the kernel drops, and the highest
# rate with 0 drops. Then RSS of gatewatch with 100k active flows (goal <= 64 MB).
# Needs root, iproute2, tcpreplay, tcpdump, editcap/mergecap (apt-get install -y tcpreplay
# tcpdump tshark).
# Usage: benches/live.sh [path/to/gatewatch]   (default: target/release/gatewatch)
#   RATES="100000 250000 500000 1000000" LIMIT=1000000 to change the steps.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-target/release/gatewatch}")
[ -x "$BIN" ] || { cargo build --release; BIN=$(realpath target/release/gatewatch); }
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces)" >&2; exit 1; }
for t in ip tcpreplay tcpdump editcap mergecap python3; do
    command -v "$t" >/dev/null || { echo "needs $t: apt-get install -y tcpreplay tcpdump tshark iproute2" >&2; exit 1; }
done
RATES=${RATES:-"100000 250000 500000 1000000"}
LIMIT=${LIMIT:-1000000}
NS_TX=gwlive-tx
NS_RX=gwlive-rx
WORK=$(mktemp -d)
cleanup() {
    ip netns pids "$NS_RX" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$NS_TX" 2>/dev/null || true
    ip netns del "$NS_RX" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# --- the lab: gwlive-tx [gwl-tx] <-veth-> [gwl-rx] gwlive-rx, no IPv6 chatter ---
ip netns add "$NS_TX"
ip netns add "$NS_RX"
ip link add gwl-tx netns "$NS_TX" type veth peer name gwl-rx netns "$NS_RX"
for end in "$NS_TX:gwl-tx" "$NS_RX:gwl-rx"; do
    ns=${end%%:*} dev=${end#*:}
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip -n "$ns" link set "$dev" mtu 9000 up
    ip -n "$ns" link set lo up
done

# --- inputs ---
BIG="$WORK/big.pcap"
bash ../shared/testdata/pcap/gen_big_pcap.sh "$BIG" >/dev/null 2>&1
FILE_PACKETS=$("$BIN" pcap --json "$BIG" | python3 -c 'import json,sys; print(json.load(sys.stdin)["packets"])')
[ "$FILE_PACKETS" -ge 1000000 ] || { echo "only $FILE_PACKETS packets in the test file" >&2; exit 1; }
echo "replay file: $FILE_PACKETS packets (replays send the first $LIMIT), $(( $(stat -c %s "$BIG") / 1048576 )) MiB"

# 100k distinct UDP 5-tuples, each seen twice (a query and an answer), Ethernet/IPv4/UDP.
FLOWS="$WORK/flows.pcap"
python3 - "$FLOWS" <<'PY'
import struct, sys
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
def frame(src, dst, sport, dport):
    payload = b"x" * 18
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + udp
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    t = 1_700_000_000
    for i in range(100_000):
        client = bytes([10, 100 + (i >> 16), (i >> 8) & 255, i & 255])
        server = bytes([192, 0, 2, 1 + i % 200])
        sport = 1024 + i % 60000
        for k, fr in enumerate((frame(client, server, sport, 5000 + i % 1000),
                                frame(server, client, 5000 + i % 1000, sport))):
            us = i * 10 + k
            f.write(struct.pack("<IIII", t + us // 1_000_000, us % 1_000_000, len(fr), len(fr)) + fr)
PY

# --- one replay: $1 = tool (gatewatch|tcpdump), $2 = tcpreplay rate option, $3 = file ---
# Prints: achieved_pps sent seen dropped flows rss_hwm_kib rss_kib cpu_seconds
replay() {
    local tool=$1 rate=$2 file=$3 out="$WORK/out" err="$WORK/err" pid
    : >"$out"; : >"$err"
    if [ "$tool" = gatewatch ]; then
        ip netns exec "$NS_RX" "$BIN" capture gwl-rx --json >"$out" 2>"$err" &
        pid=$!
        for _ in $(seq 100); do grep -q "capturing on" "$err" && break; sleep 0.05; done
    else
        ip netns exec "$NS_RX" tcpdump -i gwl-rx -n -B 4096 -w /dev/null 2>"$err" &
        pid=$!
        for _ in $(seq 100); do grep -q "listening on" "$err" && break; sleep 0.05; done
    fi
    # shellcheck disable=SC2086
    ip netns exec "$NS_TX" tcpreplay -i gwl-tx --preload-pcap $rate --limit="$LIMIT" "$file" >"$WORK/replay" 2>&1 || true
    sleep 1
    local hwm rss cpu
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    # user + system time of all its threads (fields 14 and 15 of /proc/PID/stat)
    cpu=$(awk -v tck="$(getconf CLK_TCK)" '{print ($14 + $15) / tck}' "/proc/$pid/stat")
    kill -INT "$pid"
    wait "$pid" || true
    local achieved sent
    achieved=$(awk '/Rated:/ {print $(NF-1)}' "$WORK/replay" | head -1)
    sent=$(awk '/Actual:/ {print $2}' "$WORK/replay" | head -1)
    if [ "$tool" = gatewatch ]; then
        python3 - "$out" "${achieved:-0}" "${sent:-0}" "$hwm" "$rss" "$cpu" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
i = v["capture"]["interfaces"][0]
print(sys.argv[2], sys.argv[3], v["packets"], i["dropped_kernel"] + i["dropped_interface"],
      v["flows"]["bidirectional_5tuple"] if isinstance(v["flows"], dict) and "bidirectional_5tuple" in v["flows"] else "-",
      sys.argv[4], sys.argv[5], sys.argv[6])
PY
    else
        local seen dropped
        seen=$(awk '/packets captured/ {print $1}' "$err")
        dropped=$(awk '/dropped by kernel/ {print $1}' "$err")
        echo "${achieved:-0} ${sent:-0} ${seen:-0} ${dropped:-0} - $hwm $rss $cpu"
    fi
}

printf '\n%-10s %-10s %12s %10s %10s %10s %8s %12s\n' tool rate achieved/s sent seen dropped cpu_s "pkts/cpu-s"
best_gw=0; best_td=0; cpu_gw=0; cpu_td=0
for r in topspeed $RATES; do
    if [ "$r" = topspeed ]; then opt=--topspeed; else opt="--pps=$r"; fi
    for tool in gatewatch tcpdump; do
        read -r achieved sent seen dropped _ _ _ cpu < <(replay "$tool" "$opt" "$BIG")
        per_cpu=$(python3 -c "print(int($seen / $cpu) if $cpu > 0 else 0)")
        printf '%-10s %-10s %12s %10s %10s %10s %8s %12s\n' "$tool" "$r" "$achieved" "$sent" "$seen" "$dropped" "$cpu" "$per_cpu"
        if [ "$tool" = gatewatch ]; then cpu_gw=$(python3 -c "print(round($cpu_gw + $cpu, 2))"); else cpu_td=$(python3 -c "print(round($cpu_td + $cpu, 2))"); fi
        if [ "$dropped" = 0 ] && [ "$seen" -ge "$sent" ]; then
            a=${achieved%.*}
            if [ "$tool" = gatewatch ] && [ "$a" -gt "$best_gw" ]; then best_gw=$a; fi
            if [ "$tool" = tcpdump ] && [ "$a" -gt "$best_td" ]; then best_td=$a; fi
        fi
    done
done
echo
echo "highest achieved rate with 0 drops: gatewatch $best_gw pps, tcpdump -w /dev/null $best_td pps"
python3 -c "g, t = $best_gw, $best_td; print(f'gatewatch / tcpdump: {g / t:.2f}x' if t else 'tcpdump had drops at every rate')"
echo "CPU for the same replays: gatewatch $cpu_gw s (full analysis), tcpdump -w /dev/null $cpu_td s"
echo "  (when tcpreplay is slower than both, the 0-drop rates only show the sender's limit;"
echo "   packets per CPU-second above show the capture side's capacity)"

echo
echo "100k active flows (200k packets at 100k pps):"
read -r achieved sent seen dropped flows hwm rss _ < <(LIMIT=200000 replay gatewatch --pps=100000 "$FLOWS")
echo "gatewatch: $seen of $sent packets, $dropped dropped, $flows flows, RSS $((rss / 1024)) MiB, peak RSS (VmHWM) $((hwm / 1024)) MiB (goal <= 64 MB)"
read -r _ _ tseen tdropped _ thwm _ _ < <(LIMIT=200000 replay tcpdump --pps=100000 "$FLOWS")
echo "tcpdump -w /dev/null: $tseen packets, $tdropped dropped, peak RSS $((thwm / 1024)) MiB"
