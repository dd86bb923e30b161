#!/usr/bin/env python3
"""Builds data/oui.tsv.gz, the MAC vendor table embedded in gatewatch, from the IEEE
registries as shipped by Debian's ieee-data package (apt-get install ieee-data).

Each line: <hex prefix of 6, 7 or 9 digits>\t<organization name>, sorted by prefix. MA-L
(24-bit), MA-M (28-bit), MA-S and IAB (36-bit) assignments are all kept; lookups take the
longest matching prefix. "Private" placeholder rows are dropped.
Usage: python3 data/oui-update.py [/usr/share/ieee-data]
"""
import csv
import gzip
import os
import sys

src = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/ieee-data"
rows = {}
for name in ["oui.csv", "mam.csv", "oui36.csv", "iab.csv"]:
    with open(os.path.join(src, name), newline="", encoding="utf-8") as f:
        for rec in csv.DictReader(f):
            prefix = rec["Assignment"].strip().upper()
            org = " ".join(rec["Organization Name"].split())
            if not prefix or not org or org.lower() == "private":
                continue
            rows[prefix] = org.replace("\t", " ")
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "oui.tsv.gz")
# mtime=0 keeps the file byte-identical across runs on the same input.
with gzip.GzipFile(out, "wb", compresslevel=9, mtime=0) as f:
    for prefix in sorted(rows):
        f.write(f"{prefix}\t{rows[prefix]}\n".encode())
with open(os.path.join(src, ".lastupdate")) as f:
    stamp = f.read().strip()
print(f"{len(rows)} prefixes from {src} (ieee-data {stamp}) -> {out} ({os.path.getsize(out)} bytes)")
