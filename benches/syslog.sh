#!/usr/bin/env bash
# Syslog ingest: the same loggen load (RFC 5424, octet-counted over TCP; then UDP) sent to
# `gatewatch serve` (parsing + indexing + LMDB) and to syslog-ng writing a file, in one run,
# all on loopback. Prints msgs/s of each (time until the last message is stored / written),
# UDP losses, the ratio, and the time of a search for one IP over 1 M stored events. First
# the same TCP load goes into a sink that only reads: loggen's own ceiling on this machine.
# Needs: syslog-ng-core (loggen, syslog-ng), curl.
# Usage: benches/syslog.sh [messages per TCP run, default 2000000]
# (SKIP_BUILD=1 uses the built binaries; SKIP_SEARCH=1 leaves out the search timing;
# BIN=path runs another gatewatch binary, e.g. a profiling build.)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000000}
NU=${NU:-500000}
SIZE=${SIZE:-300}
for t in loggen syslog-ng curl; do
    command -v "$t" >/dev/null || { echo "needs $t: apt-get install -y syslog-ng-core curl" >&2; exit 1; }
done
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet --bin gatewatch --example log_search_bench
BIN=${BIN:-target/release/gatewatch}
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P_NG=$(port); P_NGU=$(port); P_GW=$(port); P_GWU=$(port)

# syslog-ng: its own config, loopback ports, a file destination.
cat > "$WORK/syslog-ng.conf" <<CONF
@version: 3.38
options { stats_freq(0); log_fifo_size(1000000); flush_lines(1000); keep_hostname(yes); };
source s_bench {
    network(ip(127.0.0.1) port($P_NG) transport("tcp") flags(syslog-protocol) max-connections(16) log-iw-size(1000000));
    network(ip(127.0.0.1) port($P_NGU) transport("udp") flags(syslog-protocol) so-rcvbuf(4194304));
};
destination d_file { file("$WORK/syslog-ng.out"); };
log { source(s_bench); destination(d_file); };
CONF
syslog-ng -F --no-caps -f "$WORK/syslog-ng.conf" -p "$WORK/ng.pid" -R "$WORK/ng.persist" -c "$WORK/ng.ctl" >"$WORK/ng.log" 2>&1 &
PIDS+=($!)

# gatewatch: a temp data dir, plain HTTP on loopback, syslog on loopback, no rate limit.
export GATEWATCH_SYSLOG_TCP_LISTEN=127.0.0.1:$P_GW GATEWATCH_SYSLOG_UDP_LISTEN=127.0.0.1:$P_GWU \
    GATEWATCH_SYSLOG_TLS_LISTEN= GATEWATCH_SYSLOG_RATE_LIMIT_PER_SENDER=0 GATEWATCH_LOG_LEVEL=warn
TOKEN=$("$BIN" token create --name bench --role viewer --data-dir "$WORK/gw" 2>/dev/null | tail -1)
"$BIN" serve --data-dir "$WORK/gw" --listen 127.0.0.1:0 --http >"$WORK/gw.out" 2>"$WORK/gw.err" &
PIDS+=($!)
for _ in $(seq 100); do grep -q "listening on http" "$WORK/gw.out" 2>/dev/null && break; sleep 0.1; done
URL=$(grep -o 'http://[0-9.:]*/' "$WORK/gw.out" | head -1)
sleep 0.5

gw_metric() { curl -s -H "Authorization: Bearer $TOKEN" "${URL}metrics" | awk -v m="$1" '$1 == m {print int($2)}'; }
# Both counts are kept by one background poller each, every 20 ms, and read from a file, so
# that watching costs the two the same: gatewatch's flushed counter over one keep-alive HTTP
# connection (rather than a curl process per poll), syslog-ng's file incrementally (each byte
# read once rather than `wc -l` over the whole growing file at every poll).
python3 - "${URL}metrics" "$TOKEN" "$WORK/gw.count" <<'PY' &
import http.client, os, sys, time, urllib.parse
url, token, out = urllib.parse.urlsplit(sys.argv[1]), sys.argv[2], sys.argv[3]
conn = http.client.HTTPConnection(url.hostname, url.port)
while True:
    try:
        conn.request("GET", url.path, headers={"Authorization": "Bearer " + token})
        body = conn.getresponse().read().decode()
    except (OSError, http.client.HTTPException):
        conn.close()
        time.sleep(0.02)
        continue
    n = next((int(float(l.split()[1])) for l in body.splitlines() if l.startswith("gatewatch_syslog_flushed_total")), 0)
    with open(out + ".tmp", "w") as o:
        o.write(str(n))
    os.replace(out + ".tmp", out)
    time.sleep(0.02)
PY
PIDS+=($!)
python3 - "$WORK/syslog-ng.out" "$WORK/ng.count" <<'PY' &
import os, sys, time
path, out = sys.argv[1], sys.argv[2]
n, f = 0, None
while True:
    if f is None and os.path.exists(path):
        f = open(path, "rb")
    while f is not None and (b := f.read(1 << 20)):
        n += b.count(b"\n")
    with open(out + ".tmp", "w") as o:
        o.write(str(n))
    os.replace(out + ".tmp", out)
    time.sleep(0.02)
PY
PIDS+=($!)
gw_flushed() { cat "$WORK/gw.count" 2>/dev/null || echo 0; }
ng_lines() { cat "$WORK/ng.count" 2>/dev/null || echo 0; }
now() { date +%s.%N; }

# Sends with loggen, then waits until `count` reaches base+want or stops moving for 3 s.
# Prints "seconds delivered".
run() {
    local count=$1 base=$2 want=$3; shift 3
    local t0 last=-1 same=0 c t_last
    t0=$(now); t_last=$t0
    "$@" >/dev/null 2>&1 &
    local lg=$!
    while :; do
        sleep 0.05
        c=$(( $($count) - base ))
        if [ "$c" != "$last" ]; then last=$c; t_last=$(now); same=0; else same=$((same + 1)); fi
        [ "$c" -ge "$want" ] && break
        if ! kill -0 $lg 2>/dev/null && [ $same -ge 60 ]; then break; fi
    done
    wait $lg 2>/dev/null || true
    python3 -c "print($t_last - $t0, $last)"
}

echo "load: loggen, RFC 5424 ($SIZE bytes), $N messages over TCP (octet counting, 4 connections), then $NU over UDP"
LG_TCP=(loggen --inet --stream --syslog-proto --size "$SIZE" --active-connections 4 --number $((N / 4)) --rate 10000000 --interval 120 -Q 127.0.0.1)
# The load generator's own ceiling: the same load into a sink that only reads.
P_SINK=$(port)
python3 - "$P_SINK" <<'PY' &
import socket, sys, threading
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
def drain(c):
    b = bytearray(1 << 20)
    while c.recv_into(b):
        pass
while True:
    threading.Thread(target=drain, args=(s.accept()[0],), daemon=True).start()
PY
SINK=$!
PIDS+=($SINK)
sleep 0.3
T0=$(now); "${LG_TCP[@]}" "$P_SINK" >/dev/null 2>&1 || true; T_SINK=$(python3 -c "print($(now) - $T0)")
kill $SINK 2>/dev/null || true
read -r T_GW C_GW < <(run gw_flushed 0 "$N" "${LG_TCP[@]}" "$P_GW")
read -r T_NG C_NG < <(run ng_lines 0 "$N" "${LG_TCP[@]}" "$P_NG")

LG_UDP=(loggen --inet --dgram --syslog-proto --size "$SIZE" --number "$NU" --rate 200000 --interval 120 -Q 127.0.0.1)
GW_BASE=$(gw_flushed); NG_BASE=$(ng_lines)
read -r TU_GW CU_GW < <(run gw_flushed "$GW_BASE" "$NU" "${LG_UDP[@]}" "$P_GWU")
read -r TU_NG CU_NG < <(run ng_lines "$NG_BASE" "$NU" "${LG_UDP[@]}" "$P_NGU")
LOSS_GW=$(gw_metric gatewatch_syslog_udp_overflows_total)

python3 - "$N" "$T_GW" "$C_GW" "$T_NG" "$C_NG" "$NU" "$TU_GW" "$CU_GW" "$TU_NG" "$CU_NG" "$LOSS_GW" "$T_SINK" <<'PY'
import sys
a = sys.argv[1:]
n, tgw, cgw, tng, cng = int(a[0]), float(a[1]), int(a[2]), float(a[3]), int(a[4])
nu, tugw, cugw, tung, cung, loss = int(a[5]), float(a[6]), int(a[7]), float(a[8]), int(a[9]), int(a[10])
tsink = float(a[11])
gw, ng = cgw / tgw, cng / tng
print(f"TCP  loggen into a null sink       {n:>9} msgs in {tsink:6.2f} s = {n / tsink:>9.0f} msgs/s (the load's ceiling)")
print(f"TCP  gatewatch (parse+index+LMDB) {cgw:>9} msgs in {tgw:6.2f} s = {gw:>9.0f} msgs/s")
print(f"TCP  syslog-ng (file)              {cng:>9} msgs in {tng:6.2f} s = {ng:>9.0f} msgs/s")
print(f"TCP  ratio gatewatch / syslog-ng = {gw / ng:.2f}x")
print(f"UDP  gatewatch stored {cugw}/{nu} ({loss} counted as kernel receive-queue losses) in {tugw:.2f} s = {cugw / tugw:.0f} msgs/s")
print(f"UDP  syslog-ng wrote  {cung}/{nu} in {tung:.2f} s = {cung / tung:.0f} msgs/s")
PY

[ -n "${SKIP_SEARCH:-}" ] && exit 0
echo "search:"
target/release/examples/log_search_bench 1000000
