#!/bin/sh
# Assembles Debian packages (.deb) from the static binaries packaging/build.sh made, with
# dpkg-deb: the binary as /usr/bin/gatewatch, the hardened unit, the README, and maintainer
# scripts (debian/) that create the gatewatch user, write the default config and start the
# service, as install.sh does for a bare binary.
#
#   packaging/systemd/make-deb.sh DIST_DIR OUT_DIR
#
# DIST_DIR holds <rust target>/gatewatch; one .deb is made per Debian architecture that a
# built target serves (targets not built are skipped with a message).
# Install: sudo apt install ./gatewatch_<version>-1_<arch>.deb
set -eu

DIST=${1:?usage: make-deb.sh DIST_DIR OUT_DIR}
OUT=${2:?usage: make-deb.sh DIST_DIR OUT_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
RELEASE=1
# Reproducible packages: every timestamp is the last commit's (or 0 outside git).
SOURCE_DATE_EPOCH=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH

# Rust target -> Debian architecture. The binaries are static, so they need no libraries
# of the system they run on.
deb_arch_for() {
    case $1 in
        x86_64-unknown-linux-musl) echo amd64 ;;
        aarch64-unknown-linux-musl) echo arm64 ;;
        armv7-unknown-linux-musleabihf) echo armhf ;;
    esac
}

make_deb() {
    bin=$1 arch=$2
    work=$(mktemp -d)
    pkg="$work/pkg"
    mkdir -p "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/lib/systemd/system" "$pkg/usr/share/doc/gatewatch"
    install -m 0755 "$bin" "$pkg/usr/bin/gatewatch"
    # The unit as install.sh installs it names /usr/local; a package owns /usr.
    sed 's|/usr/local/|/usr/|g' "$HERE/gatewatch.service" >"$pkg/lib/systemd/system/gatewatch.service"
    chmod 0644 "$pkg/lib/systemd/system/gatewatch.service"
    install -m 0644 "$ROOT/README.md" "$pkg/usr/share/doc/gatewatch/README.md"
    cat >"$pkg/usr/share/doc/gatewatch/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: gatewatch

Files: *
Copyright: gatewatch developers
License: MIT or Apache-2.0
COPYRIGHT
    chmod 0644 "$pkg/usr/share/doc/gatewatch/copyright"
    for script in postinst prerm postrm; do
        install -m 0755 "$HERE/debian/$script" "$pkg/DEBIAN/$script"
    done
    installed_kib=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
    cat >"$pkg/DEBIAN/control" <<CONTROL
Package: gatewatch
Version: $VERSION-$RELEASE
Architecture: $arch
Maintainer: gatewatch developers <gatewatch@localhost>
Installed-Size: $installed_kib
Depends: passwd
Section: net
Priority: optional
Description: network visibility that runs on the router itself
 Traffic summaries, host discovery, a syslog receiver and a web UI with a JSON API,
 in one static binary (libpcap built in), run as a hardened systemd service.
CONTROL
    deb="$OUT/gatewatch_${VERSION}-${RELEASE}_${arch}.deb"
    dpkg-deb --root-owner-group -Zgzip --build "$pkg" "$deb" >/dev/null
    rm -rf "$work"
    echo "$deb"
}

command -v dpkg-deb >/dev/null || { echo "make-deb.sh: needs dpkg-deb (apt-get install -y dpkg)" >&2; exit 1; }
mkdir -p "$OUT"
made=0
for target in x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf; do
    bin="$DIST/$target/gatewatch"
    if [ ! -f "$bin" ]; then
        echo "make-deb.sh: no $bin (not built), skipping its package" >&2
        continue
    fi
    make_deb "$bin" "$(deb_arch_for "$target")"
    made=$((made + 1))
done
[ "$made" -gt 0 ] || { echo "make-deb.sh: no binaries under $DIST" >&2; exit 1; }
