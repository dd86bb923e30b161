#!/bin/sh
# Assembles FreeBSD packages for pfSense, OPNsense and plain FreeBSD without FreeBSD:
#   gatewatch-<version>.pkg              the binary and its rc.d script (any FreeBSD 14/15 amd64)
#   pfSense-pkg-gatewatch-<version>.pkg  pfSense integration: Diagnostics menu entry, service
#                                        entry in Status > Services (depends on the first)
#
#   packaging/pfsense/make-pkg.sh path/to/freebsd/gatewatch OUT_DIR
#
# The layout is what pkg(8) writes (libpkg/pkg_create.c): a tar archive, here xz-compressed,
# whose first members are +COMPACT_MANIFEST and +MANIFEST (JSON, which is valid UCL), then
# every file under its absolute path. File checksums are "1$<sha256 hex>" as pkg emits them.
# Install: pkg add gatewatch-<version>.pkg (pfSense: pkg add pfSense-pkg-gatewatch-<version>.pkg,
# with both files in the same directory).
set -eu

BIN=${1:?usage: make-pkg.sh FREEBSD_BINARY OUT_DIR}
OUT=${2:?usage: make-pkg.sh FREEBSD_BINARY OUT_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
EPOCH=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)
mkdir -p "$OUT"
# MAKE_PKG_ANY_BINARY=1 lets the tests package a stand-in binary to check the layout.
if [ "${MAKE_PKG_ANY_BINARY:-0}" != 1 ] && ! file "$BIN" | grep -q FreeBSD; then
    echo "make-pkg.sh: $BIN is not a FreeBSD binary" >&2
    exit 1
fi

VERSION=$VERSION EPOCH=$EPOCH HERE=$HERE BIN=$BIN OUT=$OUT python3 - <<'PY'
import hashlib, io, json, lzma, os, tarfile

here, out, version, epoch = os.environ["HERE"], os.environ["OUT"], os.environ["VERSION"], int(os.environ["EPOCH"])
info_xml = open(f"{here}/files/info.xml").read().replace("%%PKGVERSION%%", version)

COMMON = {
    "version": version,
    "maintainer": "gatewatch developers",
    # No public home page yet; "UNKNOWN" is what pkg create itself records then.
    "www": "UNKNOWN",
    # One binary for FreeBSD 14 and 15 (pfSense 2.7+/Plus 23.09+, OPNsense 24.1+): it needs
    # only libc.so.7, libthr.so.3 and libm.so.5 with symbol versions up to FBSD_1.7.
    "abi": "FreeBSD:*:amd64",
    "arch": "freebsd:*:x86:64",
    "prefix": "/usr/local",
    "licenselogic": "or",
    "licenses": ["MIT", "APACHE20"],
    "categories": ["net-mgmt"],
}

PACKAGES = [
    {
        "name": "gatewatch",
        "origin": "net-mgmt/gatewatch",
        "comment": "Network visibility that runs on the router itself",
        "desc": "gatewatch summarises traffic, discovers hosts, receives syslog and serves a web UI\n"
                "and JSON API, from one binary. Config: /usr/local/etc/gatewatch, data: /var/db/gatewatch.\n"
                "Enable with: sysrc gatewatch_enable=YES && service gatewatch start",
        "files": [
            ("/usr/local/bin/gatewatch", open(os.environ["BIN"], "rb").read(), 0o755),
            ("/usr/local/etc/rc.d/gatewatch", open(f"{here}/files/gatewatch.rc", "rb").read(), 0o755),
        ],
        "scripts": {
            "post-install": "install -d -m 0700 /var/db/gatewatch\n"
                            "install -d -m 0755 /usr/local/etc/gatewatch\n",
            "pre-deinstall": "/usr/local/etc/rc.d/gatewatch onestop 2>/dev/null || true\n",
        },
        "messages": [{"message": "gatewatch: enable it with `sysrc gatewatch_enable=YES`, start it with "
                                 "`service gatewatch start`. The first start logs a one-time setup link for the admin "
                                 "account to syslog (/var/log/messages); or create one with "
                                 "`gatewatch user add admin --role admin --data-dir /var/db/gatewatch`.\n"
                                 "On pfSense install pfSense-pkg-gatewatch instead, which adds the service "
                                 "to Status > Services."}],
    },
    {
        "name": "pfSense-pkg-gatewatch",
        "origin": "net-mgmt/pfSense-pkg-gatewatch",
        "comment": "pfSense package for gatewatch (menu entry and service)",
        "desc": "Adds Diagnostics > gatewatch (a link to gatewatch's web UI) and a gatewatch entry in\n"
                "Status > Services to pfSense.",
        "deps": {"gatewatch": {"origin": "net-mgmt/gatewatch", "version": version}},
        "files": [
            ("/usr/local/pkg/gatewatch.xml", open(f"{here}/gatewatch.xml", "rb").read(), 0o644),
            ("/usr/local/pkg/gatewatch.inc", open(f"{here}/files/gatewatch.inc", "rb").read(), 0o644),
            ("/usr/local/www/gatewatch.php", open(f"{here}/files/gatewatch.php", "rb").read(), 0o644),
            ("/etc/inc/priv/gatewatch.priv.inc", open(f"{here}/files/gatewatch.priv.inc", "rb").read(), 0o644),
            ("/usr/local/share/pfSense-pkg-gatewatch/info.xml", info_xml.encode(), 0o644),
        ],
        # What every pfSense package does: register with (and unregister from) pfSense's
        # package system, which reads info.xml and gatewatch.xml and runs the .inc hooks.
        "scripts": {
            "post-install": "/usr/local/bin/php -f /etc/rc.packages gatewatch POST-INSTALL\n",
            "pre-deinstall": "/usr/local/bin/php -f /etc/rc.packages gatewatch DEINSTALL\n",
        },
    },
]


def member(tar, name, data, mode):
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime = len(data), mode, epoch
    ti.uid = ti.gid = 0
    ti.uname, ti.gname = "root", "wheel"
    tar.addfile(ti, io.BytesIO(data))


for pkg in PACKAGES:
    files = pkg.pop("files")
    manifest = {"name": pkg["name"], "origin": pkg["origin"], **COMMON, **pkg}
    manifest["flatsize"] = sum(len(d) for _, d, _ in files)
    compact = {k: v for k, v in manifest.items() if k not in ("scripts", "messages")}
    manifest["files"] = {path: "1$" + hashlib.sha256(data).hexdigest() for path, data, _ in files}
    path = f"{out}/{pkg['name']}-{version}.pkg"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        member(tar, "+COMPACT_MANIFEST", json.dumps(compact, indent=1).encode(), 0o644)
        member(tar, "+MANIFEST", json.dumps(manifest, indent=1).encode(), 0o644)
        for name, data, mode in files:
            member(tar, name, data, mode)
    with open(path + ".tmp", "wb") as f:
        f.write(lzma.compress(raw.getvalue(), preset=9))
    os.replace(path + ".tmp", path)
    print(path)
PY
