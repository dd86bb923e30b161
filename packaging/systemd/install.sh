#!/bin/sh
# Installs gatewatch as a systemd service on Debian/Ubuntu-style Linux routers.
#
#   sudo packaging/systemd/install.sh [path/to/gatewatch]     install or upgrade
#   sudo packaging/systemd/install.sh --uninstall             remove, keep data and config
#   sudo packaging/systemd/install.sh --purge                 remove with data and config
#
# Optional: ADMIN_PASSWORD=... creates the admin account "admin" non-interactively.
set -eu

BIN_DST=/usr/local/bin/gatewatch
UNIT_DST=/etc/systemd/system/gatewatch.service
CONF_DIR=/etc/gatewatch
DATA_DIR=/var/lib/gatewatch
HERE=$(cd "$(dirname "$0")" && pwd)

die() { echo "install.sh: $*" >&2; exit 1; }
have_systemd() { [ -d /run/systemd/system ]; }

[ "$(id -u)" = 0 ] || die "run as root (sudo $0 $*)"

uninstall() {
    if have_systemd; then
        systemctl disable --now gatewatch.service 2>/dev/null || true
    fi
    rm -f "$UNIT_DST" "$BIN_DST"
    rm -rf /usr/local/share/doc/gatewatch
    have_systemd && systemctl daemon-reload
    if [ "${1:-}" = purge ]; then
        rm -rf "$DATA_DIR" "$CONF_DIR"
        userdel gatewatch 2>/dev/null || true
        echo "gatewatch removed, with its data and config"
    else
        echo "gatewatch removed; data kept in $DATA_DIR, config in $CONF_DIR"
    fi
}

case "${1:-}" in
    --uninstall) uninstall; exit 0 ;;
    --purge) uninstall purge; exit 0 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
esac

SRC=${1:-}
if [ -z "$SRC" ]; then
    for c in "$HERE/gatewatch" "$HERE/../../target/release/gatewatch" "$(command -v gatewatch || true)"; do
        if [ -n "$c" ] && [ -x "$c" ]; then SRC=$c; break; fi
    done
fi
if [ -z "$SRC" ] || [ ! -x "$SRC" ]; then
    die "no gatewatch binary found; pass its path: $0 path/to/gatewatch"
fi
"$SRC" version >/dev/null || die "$SRC does not run on this machine (wrong architecture?)"

if ! id gatewatch >/dev/null 2>&1; then
    useradd --system --home-dir "$DATA_DIR" --no-create-home --shell /usr/sbin/nologin gatewatch
fi

# Upgrade in place: stop, replace the binary, start again; data and config are kept.
was_active=no
if have_systemd && systemctl is-active --quiet gatewatch.service; then
    was_active=yes
    systemctl stop gatewatch.service
fi
install -m 0755 "$SRC" "$BIN_DST.new" && mv -f "$BIN_DST.new" "$BIN_DST"

install -d -m 0750 -o root -g gatewatch "$CONF_DIR"
if [ ! -f "$CONF_DIR/gatewatch.toml" ]; then
    "$BIN_DST" config example \
        | sed "s|^# data_dir = \"\"|data_dir = \"$DATA_DIR\"|" >"$CONF_DIR/gatewatch.toml"
    chown root:gatewatch "$CONF_DIR/gatewatch.toml"
    chmod 0640 "$CONF_DIR/gatewatch.toml"
fi
install -d -m 0700 -o gatewatch -g gatewatch "$DATA_DIR"
install -m 0644 "$HERE/gatewatch.service" "$UNIT_DST"
# The unit's Documentation= (systemctl help gatewatch) points here.
if [ -f "$HERE/../../README.md" ]; then
    install -D -m 0644 "$HERE/../../README.md" /usr/local/share/doc/gatewatch/README.md
fi

if [ -n "${ADMIN_PASSWORD:-}" ]; then
    if ! su -s /bin/sh gatewatch -c "$BIN_DST user list" | grep -q '^admin '; then
        printf '%s\n' "$ADMIN_PASSWORD" | su -s /bin/sh gatewatch -c "$BIN_DST user add admin --role admin"
    fi
fi

if have_systemd; then
    systemctl daemon-reload
    systemctl enable gatewatch.service >/dev/null
    if [ "$was_active" = yes ]; then
        systemctl start gatewatch.service
        echo "gatewatch upgraded and restarted: $("$BIN_DST" version)"
    else
        systemctl start gatewatch.service
        echo "gatewatch installed and started: $("$BIN_DST" version)"
    fi
    echo "web UI: see 'journalctl -u gatewatch -n 20' for the URL and, on first start, the setup link"
else
    echo "installed $BIN_DST and $UNIT_DST; systemd is not running here, so nothing was started"
fi
echo "config: $CONF_DIR/gatewatch.toml (listen on the LAN: set web.listen, then systemctl restart gatewatch)"
