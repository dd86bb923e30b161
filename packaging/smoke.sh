#!/usr/bin/env bash
# Smoke test of the cross-built binaries (packaging/build.sh): each one runs `gatewatch version`
# and `gatewatch pcap --json` on capture fixtures, natively (x86_64) or under qemu-user
# (aarch64, armv7, mipsel, mips), and its output must equal the reference binary's byte for
# byte (the mips runs check byte order too).
#
#   packaging/smoke.sh [TARGET...]        default: every Linux target that was built
#
# Env: DIST (default target-cross/dist), REF (reference binary, default the x86_64 musl build,
#      else target/release/gatewatch), FIXTURES (default ../shared/testdata/pcap/fixtures).
# Exit 0 when every binary that exists passes; 1 on a mismatch; 2 when no binary exists.
#
# What qemu-user (7.2) cannot run, so this does not try it: anything that opens the LMDB store
# (`serve`, `user`, `check-config`): musl probes get_robust_list, which qemu does not emulate
# (ENOSYS); listing interfaces through libpcap (SIOCETHTOOL is not emulated); and on big-endian
# mips, getifaddrs() loops because qemu mistranslates netlink. Each is a qemu gap; real kernels
# have them. The last section prints the store check under qemu for the record (not judged).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIST=${DIST:-$ROOT/target-cross/dist}
FIXTURES=${FIXTURES:-$ROOT/../shared/testdata/pcap/fixtures}
[ -d "$FIXTURES" ] || FIXTURES=/work/shared/testdata/pcap/fixtures
CASES="zeek__tls_ecdhe.pcap zeek__mixed-vlan-mpls.pcap zeek__pcapng-multi-interface.pcapng pktvisor__dns_ipv6_udp.pcap"

runner_for() {
    case $1 in
        x86_64-unknown-linux-musl) echo "" ;;
        aarch64-unknown-linux-musl) echo qemu-aarch64-static ;;
        armv7-unknown-linux-musleabihf) echo qemu-arm-static ;;
        mipsel-unknown-linux-musl) echo qemu-mipsel-static ;;
        mips-unknown-linux-musl) echo qemu-mips-static ;;
        *) return 1 ;;
    esac
}

main() {
    local targets="$*"
    [ -n "$targets" ] || targets="x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf mipsel-unknown-linux-musl mips-unknown-linux-musl"
    local ref=${REF:-}
    if [ -z "$ref" ]; then
        for c in "$DIST/x86_64-unknown-linux-musl/gatewatch" "$ROOT/target/release/gatewatch" "$ROOT/target/debug/gatewatch"; do
            [ -x "$c" ] && { ref=$c; break; }
        done
    fi
    [ -n "$ref" ] || { echo "smoke.sh: no reference binary (set REF)"; exit 2; }
    [ -d "$FIXTURES" ] || { echo "smoke.sh: no fixtures at $FIXTURES"; exit 2; }
    echo "reference: $ref"
    local tmp
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT

    local t bin runner ran=0 failed=0 f
    for t in $targets; do
        runner=$(runner_for "$t") || { echo "unknown target $t"; exit 2; }
        bin="$DIST/$t/gatewatch"
        if [ ! -f "$bin" ]; then
            echo "SKIP $t: $bin not built"
            continue
        fi
        if [ -n "$runner" ] && ! command -v "$runner" >/dev/null; then
            echo "FAIL $t: $runner missing (apt-get install qemu-user-static)"
            failed=1
            continue
        fi
        ran=$((ran + 1))
        # shellcheck disable=SC2086
        if out=$(timeout 60 $runner "$bin" version 2>&1) && [ "$out" = "$("$ref" version)" ]; then
            echo "ok   $t: version -> $out"
        else
            echo "FAIL $t: version -> $out"
            failed=1
        fi
        for f in $CASES; do
            "$ref" pcap --json "$FIXTURES/$f" >"$tmp/want.json" 2>/dev/null
            # shellcheck disable=SC2086
            timeout 120 $runner "$bin" pcap --json "$FIXTURES/$f" >"$tmp/got.json" 2>"$tmp/err"
            if cmp -s "$tmp/want.json" "$tmp/got.json"; then
                echo "ok   $t: pcap --json $f ($(grep -m1 '"packets"' "$tmp/got.json" | tr -d ' ,'), $(wc -c <"$tmp/got.json") bytes, same as reference)"
            else
                echo "FAIL $t: pcap --json $f differs from the reference:"
                diff "$tmp/want.json" "$tmp/got.json" | head -20
                head -5 "$tmp/err"
                failed=1
            fi
        done
        if [ -n "$runner" ]; then
            # For the record: the LMDB store under qemu (fails with ENOSYS on qemu 7.2).
            # shellcheck disable=SC2086
            store=$(timeout 30 $runner "$bin" user list --data-dir "$tmp/data-$t" 2>&1 | tail -1)
            echo "info $t: store under $runner: ${store:-<no output>}"
        fi
    done
    [ "$ran" -gt 0 ] || { echo "smoke.sh: no cross binary built (packaging/build.sh all)"; exit 2; }
    [ "$failed" = 0 ] && echo "smoke: $ran binaries pass" && exit 0
    exit 1
}

# main always exits, so bash never reads past this line.
main "$@"
