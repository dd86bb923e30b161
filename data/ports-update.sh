#!/bin/sh
# Regenerates data/nmap-top-tcp-ports.txt: nmap's TCP ports by open frequency, most
# frequent first, 1000 of them (what `nmap --top-ports N` scans is the first N lines).
# Source: nmap-services from Debian's nmap-common package.
set -eu
services="${1:-/usr/share/nmap/nmap-services}"
out="$(dirname "$0")/nmap-top-tcp-ports.txt"
awk '$2 ~ /\/tcp$/ { sub("/tcp", "", $2); print $3, $2 }' "$services" |
    sort -k1,1gr -k2,2n | head -n 1000 | awk '{ print $2 }' >"$out"
echo "wrote $(wc -l <"$out") ports to $out"
