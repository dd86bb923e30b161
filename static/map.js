// The traffic world map: active flows as animated arcs from home to each remote end, over
// the world-atlas countries (TopoJSON, decoded by topojson-client), on one canvas.
// Data: `event: flows` from the SSE feed in #flowmap[data-events] (or ?demo=N synthetic
// flows). Filters, pause, zoom/pan (wheel, drag, pinch) and the side list are all here.
// Tests read window.gatewatchMap (arcs(), view(), measure()) and #map-state[data-arcs].
(function () {
  "use strict";
  var root = document.getElementById("flowmap");
  if (!root) return;
  var canvas = document.getElementById("map-canvas");
  var ctx = canvas.getContext("2d");
  var stateEl = document.getElementById("map-state");
  var statusEl = document.getElementById("map-status");
  var listEl = document.getElementById("map-list");
  var countEl = document.getElementById("map-count");
  var form = document.getElementById("map-filters");
  var pauseBtn = document.getElementById("map-pause");

  // Arc colours are the legend's: one place (map.css .dev-*) says what a colour means.
  var COLORS = {};
  ["iphone", "android", "windows", "macos", "linux", "iot", "unknown"].forEach(function (k) {
    var sw = document.querySelector("#map-legend .dev-" + k);
    COLORS[k] = (sw && getComputedStyle(sw).backgroundColor) || "#a0a7b4";
  });
  var COUNTRY_ZOOM = 1.8, HOST_ZOOM = 2.5, DETAIL_ZOOM = 2.5, MAX_ZOOM = 40;

  var home = { lat: parseFloat(root.dataset.homeLat) || 0, lon: parseFloat(root.dataset.homeLon) || 0 };
  var flows = [];          // as received
  var shown = [];          // after filters, with projected points
  var pending = null;      // update received while paused
  var paused = false;
  var countries = [];      // {name, rings: [Float64Array x,y,...], lx, ly, area}
  var view = { zoom: 1, cx: 0.5, cy: 0.42 };
  var W = 0, H = 0, dpr = 1;
  var base = document.createElement("canvas");   // the world map
  var layer = document.createElement("canvas");  // the world map with arcs and labels
  var baseDirty = true, layerDirty = true;
  var layerView = null;        // the view the layer was drawn for
  var lastViewChange = -1e9;   // performance.now() of the last zoom or pan
  var SETTLE_MS = 120;
  var seaColor = "#0d1b2a";
  var animT = 0, lastNow = 0;
  var frameTimes = null;   // {at, draw} per frame while measure() runs
  var flushEachFrame = false; // measure(ms, {flush: true}): rasterise inside the timing
  var panEachFrame = false;   // measure(ms, {pan: true}): the view moves every frame

  // --- projection: Web Mercator into [0,1]², then the view ---
  function mx(lon) { return (lon + 180) / 360; }
  function my(lat) {
    var l = Math.max(-85, Math.min(85, lat)) * Math.PI / 180;
    return (1 - Math.log(Math.tan(Math.PI / 4 + l / 2)) / Math.PI) / 2;
  }
  function scale() { return W * view.zoom; }
  function sx(x) { return (x - view.cx) * scale() + W / 2; }
  function sy(y) { return (y - view.cy) * scale() + H / 2; }
  function clampView() {
    view.zoom = Math.max(1, Math.min(MAX_ZOOM, view.zoom));
    var halfW = W / 2 / scale(), halfH = H / 2 / scale();
    view.cx = Math.max(halfW, Math.min(1 - halfW, view.cx));
    view.cy = Math.max(Math.min(halfH, 0.5), Math.min(Math.max(1 - halfH, 0.5), view.cy));
  }

  // --- world ---
  // Countries at 1:110m at first; the 1:50m outlines are fetched once the view zooms in.
  var detail = "none"; // none | loading | done
  function loadWorld(url) {
    return fetch(url, { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("world map: HTTP " + r.status); return r.json(); })
      .then(function (topo) {
        var decoded = decodeCountries(topo);
        // The coarse outlines never replace the detailed ones that came first.
        if (url === root.dataset.worldDetail || detail !== "done") countries = decoded;
        baseDirty = true;
      });
  }
  function maybeLoadDetail() {
    if (detail !== "none" || view.zoom < DETAIL_ZOOM || !root.dataset.worldDetail) return;
    detail = "loading";
    loadWorld(root.dataset.worldDetail).then(function () { detail = "done"; stateEl.dataset.detail = "50m"; })
      .catch(function () { detail = "none"; });
  }
  function decodeCountries(topo) {
    var out = [];
    var fc = topojson.feature(topo, topo.objects.countries);
    fc.features.forEach(function (f) {
      if (!f.geometry || f.id === "010") return; // Antarctica: only distorts Mercator
      var polys = f.geometry.type === "Polygon" ? [f.geometry.coordinates] : f.geometry.coordinates;
      var rings = [], best = null;
      polys.forEach(function (poly) {
        poly.forEach(function (ring, i) {
          var a = new Float64Array(ring.length * 2);
          var minx = 1, maxx = 0, miny = 1, maxy = 0;
          for (var k = 0; k < ring.length; k++) {
            var x = mx(ring[k][0]), y = my(ring[k][1]);
            a[2 * k] = x; a[2 * k + 1] = y;
            if (x < minx) minx = x; if (x > maxx) maxx = x;
            if (y < miny) miny = y; if (y > maxy) maxy = y;
          }
          rings.push(a);
          var area = (maxx - minx) * (maxy - miny);
          if (i === 0 && (!best || area > best.area) && maxx - minx < 0.5) {
            best = { area: area, lx: (minx + maxx) / 2, ly: (miny + maxy) / 2 };
          }
        });
      });
      out.push({
        name: (f.properties && f.properties.name) || "",
        rings: rings, lx: best ? best.lx : 0, ly: best ? best.ly : 0, area: best ? best.area : 0
      });
    });
    out.sort(function (a, b) { return b.area - a.area; });
    return out;
  }

  function cssVar(name, fallback) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return v || fallback;
  }

  function drawBase() {
    base.width = canvas.width; base.height = canvas.height;
    var b = base.getContext("2d");
    b.setTransform(dpr, 0, 0, dpr, 0, 0);
    seaColor = cssVar("--map-sea", "#0d1b2a");
    b.fillStyle = seaColor;
    b.fillRect(0, 0, W, H);
    b.beginPath();
    var s = scale(), ox = W / 2 - view.cx * s, oy = H / 2 - view.cy * s;
    for (var c = 0; c < countries.length; c++) {
      var rings = countries[c].rings;
      for (var r = 0; r < rings.length; r++) {
        var a = rings[r];
        for (var k = 0; k < a.length; k += 2) {
          var x = a[k] * s + ox, y = a[k + 1] * s + oy;
          // A jump across the antimeridian starts a new piece instead of a streak.
          if (k === 0 || Math.abs(a[k] - a[k - 2]) > 0.5) b.moveTo(x, y); else b.lineTo(x, y);
        }
      }
    }
    b.fillStyle = cssVar("--map-land", "#23344a");
    b.fill("evenodd");
    b.strokeStyle = cssVar("--map-border", "#3b5270");
    b.lineWidth = 0.6;
    b.stroke();
    if (view.zoom >= COUNTRY_ZOOM) {
      b.fillStyle = cssVar("--map-label", "#b8c4d6");
      b.font = "11px system-ui, sans-serif";
      b.textAlign = "center";
      var minArea = 0.00004 / (view.zoom * view.zoom);
      for (var i = 0; i < countries.length; i++) {
        var ct = countries[i];
        if (!ct.name || ct.area < minArea) continue;
        var lx = ct.lx * s + ox, ly = ct.ly * s + oy;
        if (lx < 0 || lx > W || ly < 0 || ly > H) continue;
        b.fillText(ct.name, lx, ly);
      }
    }
    baseDirty = false;
  }

  // --- filters (same meaning as the server's MapFilter) ---
  function readFilter() {
    var f = {};
    if (!form) return f;
    ["ip", "port", "host", "iface", "len", "proto"].forEach(function (k) {
      var el = form.elements[k];
      f[k] = el ? String(el.value).trim() : "";
    });
    return f;
  }
  var PROTOS = { tcp: 6, udp: 17, icmp: 1, icmpv6: 58 };
  function matches(fl, f) {
    if (f.ip && fl.local.indexOf(f.ip) < 0 && fl.remote.indexOf(f.ip) < 0) return false;
    if (f.port) {
      var p = parseInt(f.port, 10);
      if (fl.local_port !== p && fl.remote_port !== p) return false;
    }
    if (f.host) {
      var h = f.host.toLowerCase();
      var hit = function (n) { return n && n.toLowerCase().indexOf(h) >= 0; };
      if (!hit(fl.local_name) && !hit(fl.remote_name)) return false;
    }
    if (f.iface && fl.source !== f.iface) return false;
    if (f.len) {
      var parts = f.len.split("-"), lo = parseInt(parts[0], 10), hi = parts.length > 1 ? parseInt(parts[1], 10) : Infinity;
      var pk = fl.packets_out + fl.packets_in;
      var mean = pk ? Math.floor((fl.bytes_out + fl.bytes_in) / pk) : 0;
      if (!(mean >= lo && mean <= hi)) return false;
    }
    if (f.proto) {
      var want = PROTOS[f.proto.toLowerCase()];
      if (want === undefined) want = parseInt(f.proto, 10);
      if (fl.proto !== want) return false;
    }
    return true;
  }

  // Whole pixels: 1 below 100 KB, 2 to 10 MB, 3 to 1 GB, 4 above (drawn as that many
  // one-pixel lines, see drawLayer).
  function widthFor(bytes) {
    var lg = Math.log(bytes + 1) / Math.LN10;
    return Math.max(1, Math.min(4, Math.floor((lg - 1) / 2)));
  }

  function refilter() {
    var f = readFilter();
    var hx = mx(home.lon), hy = my(home.lat);
    shown = [];
    var unplaced = 0;
    for (var i = 0; i < flows.length; i++) {
      var fl = flows[i];
      if (!matches(fl, f)) continue;
      var x, y;
      if (fl.remote_private) { x = hx; y = hy; }
      else if (typeof fl.lat === "number" && typeof fl.lon === "number") { x = mx(fl.lon); y = my(fl.lat); }
      else { unplaced++; continue; }
      shown.push({
        f: fl, x: x, y: y, w: widthFor(fl.bytes_out + fl.bytes_in),
        color: COLORS[fl.device] || COLORS.unknown, phase: (i * 0.618) % 1
      });
    }
    shown.sort(function (a, b) { return a.color < b.color ? -1 : a.color > b.color ? 1 : 0; });
    layerDirty = true;
    stateEl.dataset.arcs = String(shown.length);
    stateEl.dataset.unplaced = String(unplaced);
    statusEl.textContent = (paused ? "Paused · " : "") + shown.length + " arcs" +
      (unplaced ? " · " + unplaced + " without a location" : "");
    renderList();
  }

  function inView(a) {
    var x = sx(a.x), y = sy(a.y);
    return x >= 0 && x <= W && y >= 0 && y <= H;
  }

  function fmtBytes(b) {
    var u = ["B", "KB", "MB", "GB", "TB"], i = 0;
    while (b >= 1000 && i < u.length - 1) { b /= 1000; i++; }
    return (i ? b.toFixed(1) : String(b)) + " " + u[i];
  }

  var listTimer = 0;
  function renderList() {
    if (listTimer) return;
    listTimer = setTimeout(function () {
      listTimer = 0;
      var vis = shown.filter(inView).sort(function (a, b) {
        return (b.f.bytes_out + b.f.bytes_in) - (a.f.bytes_out + a.f.bytes_in);
      });
      countEl.textContent = "(" + vis.length + ")";
      var frag = document.createDocumentFragment();
      vis.slice(0, 100).forEach(function (a) {
        var fl = a.f, li = document.createElement("li");
        var sw = document.createElement("span");
        sw.className = "swatch dev-" + fl.device;
        var h = fl.device_hints || {};
        sw.title = [fl.device, h.hostname, h.dhcp_vendor_class && "DHCP " + h.dhcp_vendor_class, h.mac_vendor]
          .filter(Boolean).join(" · ");
        li.appendChild(sw);
        var who = document.createElement("span");
        who.textContent = (fl.remote_name || fl.remote) + (fl.remote_port ? ":" + fl.remote_port : "");
        li.appendChild(who);
        var meta = document.createElement("small");
        meta.className = "muted";
        var where = fl.remote_private ? "local" : [fl.city, fl.country].filter(Boolean).join(", ");
        meta.textContent = " " + (fl.local_name || fl.local) + " · " + (where || "?") + " · " + fmtBytes(fl.bytes_out + fl.bytes_in);
        li.appendChild(meta);
        frag.appendChild(li);
      });
      listEl.replaceChildren(frag);
    }, 150);
  }

  // --- drawing ---
  function resize() {
    dpr = window.devicePixelRatio || 1;
    W = canvas.clientWidth; H = canvas.clientHeight;
    canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
    clampView();
    baseDirty = true;
  }

  // The control point of an arc: above the middle, higher for longer arcs.
  function ctrl(x0, y0, x1, y1) {
    var dx = x1 - x0, dy = y1 - y0;
    return [(x0 + x1) / 2, (y0 + y1) / 2 - Math.sqrt(dx * dx + dy * dy) * 0.25];
  }

  // Three steps, each redone only when its input changed: the world map (`base`, on view
  // changes), the arcs and labels over it (`layer`, on new flows or filters too), and per
  // frame only a copy of the layer plus the moving dots. Rasterising 2,000 anti-aliased
  // arcs costs tens of milliseconds in software; copying a bitmap costs about one.
  function drawLayer() {
    if (baseDirty) drawBase();
    layer.width = canvas.width; layer.height = canvas.height;
    var l = layer.getContext("2d");
    l.drawImage(base, 0, 0);
    l.setTransform(dpr, 0, 0, dpr, 0, 0);
    var hx = sx(mx(home.lon)), hy = sy(my(home.lat));
    // Every arc is drawn with one-device-pixel lines, a wide arc as several side by side:
    // Skia rasterises those as hairlines, ten times faster than wider strokes (2,000 arcs:
    // ~10 ms instead of ~100 ms in software), and all arcs of a colour are one path.
    l.lineWidth = 1 / dpr;
    // Many arcs: more transparent, so dense routes read as brighter rather than a blob.
    l.globalAlpha = Math.max(0.2, Math.min(0.8, 10 / Math.sqrt(shown.length + 1)));
    var i = 0, n = shown.length;
    while (i < n) {
      var color = shown[i].color;
      l.beginPath();
      for (; i < n && shown[i].color === color; i++) {
        var a = shown[i], x1 = sx(a.x), y1 = sy(a.y), lines = Math.round(a.w * dpr);
        if (a.f.remote_private) {
          for (var r = 0; r < lines; r++) {
            var rad = 6 + a.w - r / dpr;
            l.moveTo(hx + rad, hy);
            l.arc(hx, hy, rad, 0, Math.PI * 2);
          }
          continue;
        }
        var c = ctrl(hx, hy, x1, y1);
        var dx = x1 - hx, dy = y1 - hy, len = Math.sqrt(dx * dx + dy * dy) || 1;
        var nx = -dy / len / dpr, ny = dx / len / dpr;
        for (var k = 0; k < lines; k++) {
          var o = k - (lines - 1) / 2;
          l.moveTo(hx + nx * o, hy + ny * o);
          l.quadraticCurveTo(c[0] + nx * o, c[1] + ny * o, x1 + nx * o, y1 + ny * o);
        }
      }
      l.strokeStyle = color;
      l.stroke();
    }
    l.globalAlpha = 1;
    if (view.zoom >= HOST_ZOOM) drawHostLabels(l);
    layerDirty = false;
    layerView = { zoom: view.zoom, cx: view.cx, cy: view.cy };
  }

  function draw(now) {
    var t0 = performance.now();
    if (!paused) animT += Math.min(now - lastNow, 100) / 1000;
    lastNow = now;
    if (panEachFrame) { view.cx += 0.3 / scale(); if (view.cx > 0.9) view.cx = 0.1; viewChanged(); }
    // While the view moves (drag, wheel, pinch), the last layer is moved and scaled as a
    // bitmap; it is redrawn sharp once the view has stood still for a moment.
    var settling = layerView && now - lastViewChange < SETTLE_MS;
    if (!settling && (baseDirty || layerDirty)) drawLayer();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    if (layerView.zoom === view.zoom && layerView.cx === view.cx && layerView.cy === view.cy) {
      ctx.drawImage(layer, 0, 0);
    } else {
      ctx.fillStyle = seaColor;
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      var k = view.zoom / layerView.zoom, s = scale();
      var tx = W / 2 * (1 - k) + (layerView.cx - view.cx) * s, ty = H / 2 * (1 - k) + (layerView.cy - view.cy) * s;
      ctx.setTransform(k, 0, 0, k, tx * dpr, ty * dpr);
      ctx.drawImage(layer, 0, 0);
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    var hx = sx(mx(home.lon)), hy = sy(my(home.lat));
    // Moving dots, one path per colour.
    var i = 0, n = shown.length;
    while (i < n) {
      var col = shown[i].color;
      ctx.beginPath();
      for (; i < n && shown[i].color === col; i++) {
        var d = shown[i];
        if (d.f.remote_private) continue;
        var ex = sx(d.x), ey = sy(d.y), cc = ctrl(hx, hy, ex, ey);
        var u = (animT / 2.5 + d.phase) % 1, v = 1 - u;
        var px = v * v * hx + 2 * v * u * cc[0] + u * u * ex;
        var py = v * v * hy + 2 * v * u * cc[1] + u * u * ey;
        ctx.rect(px - 1.5, py - 1.5, 3, 3);
      }
      ctx.fillStyle = col;
      ctx.fill();
    }
    // Home.
    ctx.beginPath();
    ctx.arc(hx, hy, 4, 0, Math.PI * 2);
    ctx.fillStyle = "#fff";
    ctx.fill();
    // A 1-pixel read makes Chrome rasterise the recorded canvas now, inside the timing
    // (otherwise that cost lands after the callback, where script cannot see it).
    if (flushEachFrame) ctx.getImageData(0, 0, 1, 1);
    if (frameTimes) frameTimes.push({ at: now, draw: performance.now() - t0 });
    requestAnimationFrame(draw);
  }

  function drawHostLabels(l) {
    l.font = "11px system-ui, sans-serif";
    l.textAlign = "left";
    l.fillStyle = cssVar("--map-host", "#ffffff");
    var seen = {}, drawn = 0;
    for (var i = 0; i < shown.length && drawn < 300; i++) {
      var a = shown[i], f = a.f;
      if (f.remote_private) continue;
      var label = f.remote_name || f.remote;
      if (seen[label]) continue;
      var x = sx(a.x), y = sy(a.y);
      if (x < 0 || x > W || y < 0 || y > H) continue;
      seen[label] = true;
      drawn++;
      l.fillText(label, x + 5, y - 4 - (drawn % 3) * 11);
    }
  }

  // --- zoom and pan ---
  function zoomAt(factor, px, py) {
    var wx = view.cx + (px - W / 2) / scale(), wy = view.cy + (py - H / 2) / scale();
    view.zoom *= factor;
    view.zoom = Math.max(1, Math.min(MAX_ZOOM, view.zoom));
    view.cx = wx - (px - W / 2) / scale();
    view.cy = wy - (py - H / 2) / scale();
    viewChanged();
  }
  function viewChanged() {
    lastViewChange = performance.now();
    clampView();
    baseDirty = true;
    stateEl.dataset.zoom = view.zoom.toFixed(2);
    maybeLoadDetail();
    renderList();
  }
  canvas.addEventListener("wheel", function (e) {
    e.preventDefault();
    var r = canvas.getBoundingClientRect();
    zoomAt(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  var pointers = {}, pinch = null;
  canvas.addEventListener("pointerdown", function (e) {
    canvas.setPointerCapture(e.pointerId);
    pointers[e.pointerId] = { x: e.clientX, y: e.clientY };
    pinch = null;
  });
  canvas.addEventListener("pointermove", function (e) {
    var p = pointers[e.pointerId];
    if (!p) return;
    var ids = Object.keys(pointers);
    if (ids.length === 1) {
      view.cx -= (e.clientX - p.x) / scale();
      view.cy -= (e.clientY - p.y) / scale();
      p.x = e.clientX; p.y = e.clientY;
      viewChanged();
    } else if (ids.length === 2) {
      p.x = e.clientX; p.y = e.clientY;
      var a = pointers[ids[0]], b = pointers[ids[1]];
      var dist = Math.hypot(a.x - b.x, a.y - b.y);
      var r = canvas.getBoundingClientRect();
      if (pinch) zoomAt(dist / pinch, (a.x + b.x) / 2 - r.left, (a.y + b.y) / 2 - r.top);
      pinch = dist;
    }
  });
  function up(e) { delete pointers[e.pointerId]; pinch = null; }
  canvas.addEventListener("pointerup", up);
  canvas.addEventListener("pointercancel", up);
  document.getElementById("map-zoom-in").addEventListener("click", function () { zoomAt(1.5, W / 2, H / 2); });
  document.getElementById("map-zoom-out").addEventListener("click", function () { zoomAt(1 / 1.5, W / 2, H / 2); });
  document.getElementById("map-reset").addEventListener("click", function () {
    view = { zoom: 1, cx: 0.5, cy: 0.42 };
    viewChanged();
  });
  window.addEventListener("resize", function () { resize(); renderList(); });

  // --- pause, filters ---
  pauseBtn.addEventListener("click", function () {
    paused = !paused;
    pauseBtn.textContent = paused ? "Resume" : "Pause";
    pauseBtn.setAttribute("aria-pressed", String(paused));
    if (!paused && pending) { flows = pending; pending = null; }
    refilter();
  });
  if (form) {
    form.addEventListener("input", function () {
      refilter();
      var q = new URLSearchParams(new FormData(form));
      Array.from(q.keys()).forEach(function (k) { if (!q.get(k)) q.delete(k); });
      history.replaceState(null, "", location.pathname + (q.toString() ? "?" + q : ""));
    });
    form.addEventListener("submit", function (e) { e.preventDefault(); refilter(); });
  }

  function receive(feed) {
    if (feed.home) home = feed.home;
    if (paused) { pending = feed.flows; return; }
    flows = feed.flows;
    refilter();
  }

  // A seeded synthetic feed for ?demo=N (frame-time measurements, screenshots).
  function demo(n) {
    var seed = 42;
    function rnd() { seed = (seed * 1664525 + 1013904223) >>> 0; return seed / 4294967296; }
    var kinds = Object.keys(COLORS), out = [];
    for (var i = 0; i < n; i++) {
      var b = Math.floor(Math.pow(10, 2 + rnd() * 6));
      out.push({
        source: "demo", proto: rnd() < 0.8 ? 6 : 17, local: "192.168.1." + (1 + i % 250), local_port: 40000 + i % 20000,
        local_name: null, remote: "198.51.100." + (i % 256), remote_port: rnd() < 0.7 ? 443 : 53,
        remote_name: "host" + i + ".example", remote_private: rnd() < 0.02,
        lat: -50 + rnd() * 120, lon: -180 + rnd() * 360, country: null, city: null,
        device: kinds[Math.floor(rnd() * kinds.length)],
        bytes_out: b >> 2, bytes_in: b - (b >> 2), packets_out: 1 + (b >> 12), packets_in: 1 + (b >> 11)
      });
    }
    return out;
  }

  window.gatewatchMap = {
    // The flows drawn now (after filters), each with its arc's width and colour.
    arcs: function () {
      return shown.map(function (a) { return Object.assign({ width: a.w, color: a.color }, a.f); });
    },
    view: function (zoom, lat, lon) {
      if (zoom !== undefined) {
        view.zoom = zoom;
        if (lat !== undefined) { view.cx = mx(lon); view.cy = my(lat); }
        viewChanged();
      }
      return { zoom: view.zoom, cx: view.cx, cy: view.cy };
    },
    // Time to redraw the arcs layer (what a new SSE update or filter costs), rasterised,
    // `n` times.
    relayer: function (n) {
      var t = [];
      for (var k = 0; k < n; k++) {
        var t0 = performance.now();
        layerDirty = true;
        drawLayer();
        layer.getContext("2d").getImageData(0, 0, 1, 1);
        t.push(performance.now() - t0);
      }
      t.sort(function (a, b) { return a - b; });
      return { n: n, median: t[Math.floor(n / 2)], max: t[n - 1] };
    },
    // Frame intervals and draw times over `ms` milliseconds; with {flush: true} the draw
    // time includes rasterising the canvas. Long animation frames (over 50 ms, Chrome's
    // PerformanceObserver) are counted with how much of them was script and rendering.
    measure: function (ms, opts) {
      frameTimes = [];
      flushEachFrame = !!(opts && opts.flush);
      panEachFrame = !!(opts && opts.pan);
      var loaf = [], obs = null;
      try {
        obs = new PerformanceObserver(function (l) { loaf.push.apply(loaf, l.getEntries()); });
        obs.observe({ type: "long-animation-frame", buffered: false });
      } catch (e) { obs = null; }
      return new Promise(function (resolve) {
        setTimeout(function () {
          var ft = frameTimes; frameTimes = null; flushEachFrame = false; panEachFrame = false;
          if (obs) { loaf.push.apply(loaf, obs.takeRecords()); obs.disconnect(); }
          var gaps = [], draws = [];
          for (var i = 1; i < ft.length; i++) { gaps.push(ft[i].at - ft[i - 1].at); draws.push(ft[i].draw); }
          function stats(v) {
            var s = v.slice().sort(function (a, b) { return a - b; }), sum = 0;
            s.forEach(function (x) { sum += x; });
            return { mean: s.length ? sum / s.length : 0, p95: s.length ? s[Math.floor(s.length * 0.95)] : 0, max: s.length ? s[s.length - 1] : 0 };
          }
          var long = { supported: !!obs, count: loaf.length, duration: stats(loaf.map(function (e) { return e.duration; })),
            render: stats(loaf.map(function (e) { return e.renderStart ? e.startTime + e.duration - e.renderStart : 0; })) };
          resolve({ frames: ft.length, arcs: shown.length, dpr: dpr, canvas: [canvas.width, canvas.height],
            interval: stats(gaps), draw: stats(draws), long_frames: long });
        }, ms);
      });
    }
  };

  resize();
  requestAnimationFrame(function (t) { lastNow = t; draw(t); });
  loadWorld(root.dataset.world).catch(function (e) { statusEl.textContent = String(e.message || e); });
  var demoN = parseInt(new URLSearchParams(location.search).get("demo") || "", 10);
  if (demoN > 0) {
    receive({ flows: demo(Math.min(demoN, 20000)) });
  } else if (window.EventSource) {
    var es = new EventSource(root.dataset.events);
    es.addEventListener("flows", function (e) {
      try { receive(JSON.parse(e.data)); } catch (err) { statusEl.textContent = "Bad update: " + err; }
    });
    es.onerror = function () { statusEl.textContent = "Reconnecting…"; };
  }
})();
