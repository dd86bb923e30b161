#!/usr/bin/env python3
"""Frame cost of the traffic map with N synthetic arcs (/traffic/map?demo=N) in headless
Chromium, driven through chromedriver's WebDriver HTTP API (standard library only).

Prints, per run, the script time per frame (performance.now() around the draw), the same
with the canvas rasterised inside the timing (a 1-pixel getImageData after the draw), the
requestAnimationFrame interval, and Chrome's long-animation-frame entries. The peer is the
same browser running an empty requestAnimationFrame loop on a blank page: the interval
ratio says how much the map slows the browser's own frame pacing.

Usage: map_frames.py BASE_URL SESSION_COOKIE [--arcs 2000] [--seconds 5] [--runs 3]
Called by benches/map_frames.sh, which starts gatewatch and logs in. Loopback only.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"

BLANK_LOOP = """
const done = arguments[arguments.length - 1];
const ms = arguments[0], at = [];
function f(t) { at.push(t); if (at.length && t - at[0] < ms) requestAnimationFrame(f); else {
  const g = []; for (let i = 1; i < at.length; i++) g.push(at[i] - at[i - 1]);
  g.sort((a, b) => a - b); const sum = g.reduce((a, b) => a + b, 0);
  done({frames: at.length, interval: {mean: sum / g.length, p95: g[Math.floor(g.length * 0.95)], max: g[g.length - 1]}}); } }
requestAnimationFrame(f);
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class WebDriver:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        self.sid = None

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            v = json.loads(r.read())
        return v.get("value")

    def session(self, args):
        caps = {"capabilities": {"alwaysMatch": {
            "acceptInsecureCerts": True,
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args}}}}
        self.sid = self.call("POST", "/session", caps)["sessionId"]

    def s(self, method, path, body=None):
        return self.call(method, f"/session/{self.sid}{path}", body)

    def quit(self):
        if self.sid:
            try:
                self.call("DELETE", f"/session/{self.sid}")
            except Exception:
                pass
            self.sid = None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("cookie")
    ap.add_argument("--arcs", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--window", default="1400,900")
    ap.add_argument("--extra-flags", default="", help="more Chromium flags, space separated")
    a = ap.parse_args()

    port = free_port()
    drv = subprocess.Popen([CHROMEDRIVER, f"--port={port}"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    wd = WebDriver(port)
    profile = tempfile.mkdtemp(prefix="gw-map-frames-")
    try:
        for _ in range(100):
            try:
                wd.call("GET", "/status")
                break
            except Exception:
                time.sleep(0.1)
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                "--ignore-certificate-errors", f"--window-size={a.window}",
                f"--user-data-dir={profile}",
                # A headless window counts as hidden to some throttles; keep rAF at full rate.
                "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                "--disable-backgrounding-occluded-windows"] + a.extra_flags.split()
        wd.session(args)
        ms = int(a.seconds * 1000)
        wd.s("POST", "/timeouts", {"script": ms + 60000})
        # Peer: the browser's own frame loop on a blank page.
        wd.s("POST", "/url", {"url": "data:text/html,<title>blank</title>"})
        blank = wd.s("POST", "/execute/async", {"script": BLANK_LOOP, "args": [ms]})
        print(f"blank page rAF loop: {blank['frames']} frames, interval mean {blank['interval']['mean']:.1f} ms "
              f"p95 {blank['interval']['p95']:.1f} ms")

        wd.s("POST", "/url", {"url": a.base + "/login"})
        wd.s("POST", "/cookie", {"cookie": {"name": "gw_session", "value": a.cookie, "path": "/",
                                            "secure": True, "httpOnly": True}})
        wd.s("POST", "/url", {"url": f"{a.base}/traffic/map?demo={a.arcs}"})
        for _ in range(200):
            n = wd.s("POST", "/execute/sync", {"script":
                     "return window.gatewatchMap ? window.gatewatchMap.arcs().length : 0", "args": []})
            if n >= a.arcs * 0.95:
                break
            time.sleep(0.1)
        else:
            sys.exit(f"the map drew only {n} arcs")
        time.sleep(1)
        measure = ("const done = arguments[arguments.length - 1];"
                   "window.gatewatchMap.measure(arguments[0], arguments[1]).then(done);")
        rows = []
        modes = [("script", {}), ("script+raster", {"flush": True}),
                 ("panning, script+raster", {"flush": True, "pan": True})]
        for run in range(a.runs):
            for name, opts in modes:
                m = wd.s("POST", "/execute/async", {"script": measure, "args": [ms, opts]})
                rows.append((name, m))
                lf = m["long_frames"]
                print(f"run {run + 1} {name}: {m['arcs']} arcs, "
                      f"canvas {m['canvas'][0]}x{m['canvas'][1]} dpr {m['dpr']}, {m['frames']} frames; "
                      f"draw mean {m['draw']['mean']:.2f} ms p95 {m['draw']['p95']:.2f} ms max {m['draw']['max']:.1f}; "
                      f"rAF interval mean {m['interval']['mean']:.1f} ms p95 {m['interval']['p95']:.1f} ms; "
                      f"long frames {lf['count']}" + (f" (render part mean {lf['render']['mean']:.1f} ms)" if lf['count'] else ""))
        relayer = wd.s("POST", "/execute/sync", {"script": "return window.gatewatchMap.relayer(arguments[0])", "args": [10]})
        print(f"arcs layer redraw (new flows or filter, rasterised): median {relayer['median']:.1f} ms max {relayer['max']:.1f} ms over {relayer['n']}")
        def best(name):
            return min((m for n, m in rows if n == name), key=lambda m: m["draw"]["mean"])
        plain, raster, pan = best("script"), best("script+raster"), best("panning, script+raster")
        iv = plain["interval"]["mean"]
        print(f"summary: {a.arcs} arcs; per frame script mean {plain['draw']['mean']:.2f} ms p95 {plain['draw']['p95']:.2f} ms; "
              f"script+raster mean {raster['draw']['mean']:.2f} ms p95 {raster['draw']['p95']:.2f} ms; "
              f"panning script+raster mean {pan['draw']['mean']:.2f} ms p95 {pan['draw']['p95']:.2f} ms; "
              f"rAF interval mean {iv:.1f} ms ({1000 / iv:.0f} fps), p95 {plain['interval']['p95']:.1f} ms; "
              f"vs blank page {blank['interval']['mean']:.1f} ms: ratio {iv / blank['interval']['mean']:.2f}; "
              f"arcs layer redraw median {relayer['median']:.1f} ms")
    finally:
        wd.quit()
        os.killpg(drv.pid, 9)
        drv.wait()
        subprocess.run(["rm", "-rf", profile])


if __name__ == "__main__":
    main()
