#!/bin/sh
# Assembles OpenWrt .ipk packages from the static binaries packaging/build.sh made, without
# the OpenWrt SDK. An .ipk here is what opkg reads: an ar archive holding debian-binary,
# control.tar.gz (control, conffiles, postinst, prerm) and data.tar.gz (the files).
#
#   packaging/openwrt/make-ipk.sh DIST_DIR OUT_DIR
#
# DIST_DIR holds <rust target>/gatewatch; one .ipk is made per OpenWrt architecture name of
# each target found (targets not built are skipped with a message).
# Install on the router: opkg install gatewatch_<version>_<arch>.ipk
set -eu

DIST=${1:?usage: make-ipk.sh DIST_DIR OUT_DIR}
OUT=${2:?usage: make-ipk.sh DIST_DIR OUT_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
RELEASE=1
# Reproducible archives: every timestamp is the last commit's (or 0 outside git).
EPOCH=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)

# Rust target -> OpenWrt package architectures the binary runs on. The binaries are static,
# so one binary serves every CPU variant of its instruction set.
archs_for() {
    case $1 in
        x86_64-unknown-linux-musl) echo "x86_64" ;;
        aarch64-unknown-linux-musl) echo "aarch64_cortex-a53 aarch64_cortex-a72 aarch64_cortex-a76 aarch64_generic" ;;
        armv7-unknown-linux-musleabihf) echo "arm_cortex-a7_neon-vfpv4 arm_cortex-a9_vfpv3-d16 arm_cortex-a15_neon-vfpv4" ;;
        mipsel-unknown-linux-musl) echo "mipsel_24kc" ;;
        mips-unknown-linux-musl) echo "mips_24kc" ;;
    esac
}

# ar_member FILE: one member of a common-format ar archive (name/, no symbol table).
ar_member() {
    size=$(stat -c %s "$1")
    printf '%-16s%-12s%-6s%-6s%-8s%-10s`\n' "$(basename "$1")" "$EPOCH" 0 0 100644 "$size"
    cat "$1"
    [ $((size % 2)) = 0 ] || printf '\n'
}

# tgz DIR FILE: a gzip'd tar of DIR's contents as ./..., owned by root, fixed order and times.
tgz() {
    tar -C "$1" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$EPOCH" \
        --format=gnu -cf - . | gzip -9n >"$2"
}

make_ipk() {
    bin=$1 arch=$2
    work=$(mktemp -d)
    data="$work/data" ctrl="$work/control"
    mkdir -p "$data/usr/bin" "$data/etc/init.d" "$data/etc/config" "$ctrl"
    install -m 0755 "$bin" "$data/usr/bin/gatewatch"
    install -m 0755 "$HERE/files/gatewatch.init" "$data/etc/init.d/gatewatch"
    install -m 0600 "$HERE/files/gatewatch.config" "$data/etc/config/gatewatch"
    installed=$(find "$data" -type f -exec stat -c %s {} + | awk '{ s += $1 } END { print s }')
    cat >"$ctrl/control" <<EOF
Package: gatewatch
Version: $VERSION-$RELEASE
Depends: 
Source: gatewatch
SourceName: gatewatch
License: MIT OR Apache-2.0
Section: net
Maintainer: gatewatch developers
Architecture: $arch
Installed-Size: $installed
Description: Network visibility that runs on the router itself: traffic summaries, host
 discovery, a syslog receiver and a web UI with a JSON API, in one static binary.
EOF
    # opkg wants no empty Depends line: drop it (the binary is static, it needs nothing).
    sed -i '/^Depends: $/d' "$ctrl/control"
    echo /etc/config/gatewatch >"$ctrl/conffiles"
    install -m 0755 "$HERE/control/postinst" "$ctrl/postinst"
    install -m 0755 "$HERE/control/prerm" "$ctrl/prerm"
    echo 2.0 >"$work/debian-binary"
    tgz "$ctrl" "$work/control.tar.gz"
    tgz "$data" "$work/data.tar.gz"
    ipk="$OUT/gatewatch_${VERSION}-${RELEASE}_${arch}.ipk"
    {
        printf '!<arch>\n'
        ar_member "$work/debian-binary"
        ar_member "$work/control.tar.gz"
        ar_member "$work/data.tar.gz"
    } >"$ipk.tmp"
    mv "$ipk.tmp" "$ipk"
    rm -rf "$work"
    echo "$ipk"
}

mkdir -p "$OUT"
made=0
for target in x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf \
    mipsel-unknown-linux-musl mips-unknown-linux-musl; do
    bin="$DIST/$target/gatewatch"
    if [ ! -f "$bin" ]; then
        echo "make-ipk.sh: no $bin (not built), skipping its packages" >&2
        continue
    fi
    for arch in $(archs_for "$target"); do
        make_ipk "$bin" "$arch"
        made=$((made + 1))
    done
done
[ "$made" -gt 0 ] || { echo "make-ipk.sh: no binaries under $DIST" >&2; exit 1; }
