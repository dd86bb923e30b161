// gatewatch Logs page: the pass/block chart (uPlot) and the live tail (SSE) with
// pause/resume and highlight. The page works without this file.
(function () {
  "use strict";
  var MAX_ROWS = 300;

  function chart(el) {
    var series;
    try { series = JSON.parse(el.getAttribute("data-series")); } catch (e) { return; }
    if (!window.uPlot || !series || !series.length) return;
    var data = [[], [], []];
    series.forEach(function (p) { data[0].push(p[0]); data[1].push(p[1]); data[2].push(p[2]); });
    var opts = {
      width: Math.max(el.clientWidth, 280),
      height: 180,
      scales: { x: { time: true } },
      axes: [{}, { size: 50 }],
      legend: { show: true },
      series: [
        {},
        { label: "passed", stroke: "#2e7d32", fill: "rgba(46,125,50,0.15)", width: 1.5 },
        { label: "blocked", stroke: "#c62828", fill: "rgba(198,40,40,0.15)", width: 1.5 }
      ]
    };
    var plot = new window.uPlot(opts, data, el);
    window.addEventListener("resize", function () {
      plot.setSize({ width: Math.max(el.clientWidth, 280), height: 180 });
    });
  }

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    if (text !== null && text !== undefined) td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  function addr(td, ip, port, host) {
    if (!ip) return;
    var a = document.createElement("a");
    a.href = "/logs?ip=" + encodeURIComponent(ip);
    a.textContent = ip;
    a.title = "History of this address";
    td.appendChild(a);
    if (port !== null && port !== undefined) td.appendChild(document.createTextNode(":" + port));
    if (host) {
      td.appendChild(document.createElement("br"));
      var hl = document.createElement("a");
      hl.className = "host";
      hl.href = "/hosts/" + host.id;
      hl.textContent = host.label;
      hl.title = "This address's host in the inventory";
      td.appendChild(hl);
    }
    td.appendChild(document.createTextNode(" "));
    var f = document.createElement("a");
    f.className = "small";
    f.href = "/traffic/flows?ip=" + encodeURIComponent(ip) + (port !== null && port !== undefined ? "&port=" + port : "");
    f.textContent = "flows";
    td.appendChild(f);
  }

  function row(r) {
    var tr = document.createElement("tr");
    var t = cell(tr, null, "nowrap");
    t.textContent = (r.received || "").slice(11, 23);
    t.title = r.received;
    var h = cell(tr, r.host || r.sender);
    if (r.app) { h.appendChild(document.createElement("br")); var s = document.createElement("span"); s.className = "muted small"; s.textContent = r.app; h.appendChild(s); }
    var act = cell(tr, null);
    if (r.action) { var b = document.createElement("span"); b.className = "badge " + r.action; b.textContent = r.action; act.appendChild(b); }
    if (r.protocol) act.appendChild(document.createTextNode(" " + r.protocol));
    addr(cell(tr, null), r.src, r.src_port, r.src_host);
    addr(cell(tr, null), r.dst, r.dst_port, r.dst_host);
    cell(tr, r.message, "msg");
    return tr;
  }

  function tail(root) {
    var url = root.getAttribute("data-tail");
    var body = root.querySelector("[data-tail-rows]");
    var toggle = root.querySelector("[data-tail-toggle]");
    var hl = root.querySelector("[data-tail-highlight]");
    var status = root.querySelector("[data-tail-status]");
    if (!url || !body || !window.EventSource) return;
    var paused = false, held = [], shown = 0;

    function term() { return hl ? hl.value.trim().toLowerCase() : ""; }
    function mark(tr) {
      var t = term();
      tr.classList.toggle("hl", t !== "" && tr.textContent.toLowerCase().indexOf(t) >= 0);
    }
    function say() {
      status.textContent = paused
        ? "Paused · " + held.length + " new line" + (held.length === 1 ? "" : "s") + " waiting"
        : "Live · " + shown + " line" + (shown === 1 ? "" : "s") + " since you opened the page";
    }
    function show(rows) {
      rows.forEach(function (r) {
        var tr = row(r);
        mark(tr);
        body.insertBefore(tr, body.firstChild);
        shown++;
      });
      while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
    }
    var source = new EventSource(url);
    source.addEventListener("open", function () { root.classList.remove("stale"); say(); });
    source.addEventListener("error", function () { root.classList.add("stale"); status.textContent = "Disconnected; retrying…"; });
    source.addEventListener("logs", function (ev) {
      var data;
      try { data = JSON.parse(ev.data); } catch (e) { return; }
      if (paused) {
        held = held.concat(data.rows);
        if (held.length > MAX_ROWS) held = held.slice(held.length - MAX_ROWS);
      } else {
        show(data.rows);
      }
      say();
    });
    toggle.addEventListener("click", function () {
      paused = !paused;
      toggle.textContent = paused ? "Resume" : "Pause";
      toggle.setAttribute("aria-pressed", paused ? "true" : "false");
      if (!paused) { show(held); held = []; }
      say();
    });
    if (hl) hl.addEventListener("input", function () {
      Array.prototype.forEach.call(body.rows, mark);
    });
    say();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".logchart[data-series]").forEach(chart);
    document.querySelectorAll("[data-tail]").forEach(tail);
  });
})();
