// gatewatch Traffic page: draws the rate chart with uPlot and applies live updates
// (the "live-update" event app.js fires for each SSE message). The page works without it.
(function () {
  "use strict";
  var MAX_POINTS = 600;

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
  }
  function si(v, unit) {
    var units = ["", "k", "M", "G", "T"], i = 0;
    while (Math.abs(v) >= 1000 && i < units.length - 1) { v /= 1000; i++; }
    return (i === 0 ? Math.round(v) : v.toFixed(1)) + " " + units[i] + unit;
  }
  function bytes(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0, v = n;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return i === 0 ? n + " B" : v.toFixed(1) + " " + units[i];
  }
  function percent(part, whole) {
    return whole > 0 ? (part * 100 / whole).toFixed(1) + " %" : "–";
  }

  function makeChart(el) {
    var series;
    try { series = JSON.parse(el.getAttribute("data-series")); } catch (e) { return null; }
    var data = [series.t, series.pps, series.bps];
    var pad = function (n) { return n < 10 ? "0" + n : String(n); };
    var timeLabels = function (u, vals) {
      var span = (u.scales.x.max || 0) - (u.scales.x.min || 0);
      return vals.map(function (v) {
        var d = new Date(v * 1000), hm = pad(d.getHours()) + ":" + pad(d.getMinutes());
        if (span > 2 * 86400) return (d.getMonth() + 1) + "/" + d.getDate() + " " + hm;
        return span < 600 ? hm + ":" + pad(d.getSeconds()) : hm;
      });
    };
    var axis = { stroke: css("--muted"), grid: { stroke: css("--line"), width: 1 }, ticks: { stroke: css("--line") } };
    var opts = {
      width: Math.max(el.clientWidth, 200),
      height: el.clientWidth < 500 ? 200 : 260,
      cursor: { drag: { x: false, y: false } },
      scales: { pps: { auto: true, range: function (u, min, max) { return [0, Math.max(max, 1)]; } },
                bps: { auto: true, range: function (u, min, max) { return [0, Math.max(max, 1)]; } } },
      series: [
        {},
        { label: "packets/s", scale: "pps", stroke: css("--accent"), width: 2, value: function (u, v) { return v == null ? "–" : si(v, "pkt/s"); } },
        { label: "bits/s", scale: "bps", stroke: css("--ok"), width: 1.5, value: function (u, v) { return v == null ? "–" : si(v, "bit/s"); } }
      ],
      axes: [
        Object.assign({}, axis, { values: timeLabels, space: 80 }),
        Object.assign({}, axis, { scale: "pps", size: 60, values: function (u, vals) { return vals.map(function (v) { return si(v, ""); }); } }),
        Object.assign({}, axis, { scale: "bps", side: 1, size: 60, grid: { show: false }, values: function (u, vals) { return vals.map(function (v) { return si(v, "b"); }); } })
      ]
    };
    var chart = new uPlot(opts, data, el);
    var hint = el.parentNode.querySelector(".chart-empty");
    window.addEventListener("resize", function () {
      chart.setSize({ width: Math.max(el.clientWidth, 200), height: el.clientWidth < 500 ? 200 : 260 });
    });
    return {
      push: function (p) {
        var t = data[0];
        if (t.length && t[t.length - 1] === p[0]) return;
        data[0].push(p[0]); data[1].push(p[1]); data[2].push(p[2]);
        if (t.length > MAX_POINTS) { data[0].shift(); data[1].shift(); data[2].shift(); }
        chart.setData(data);
        if (hint) { hint.remove(); hint = null; }
      }
    };
  }

  function cell(text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    return td;
  }

  function fillTable(tbody, rows, total) {
    var isBytes = tbody.hasAttribute("data-bytes"), link = tbody.hasAttribute("data-link");
    var frag = document.createDocumentFragment();
    if (!rows.length) {
      var tr0 = document.createElement("tr"), td0 = cell("Nothing yet.", "muted");
      td0.colSpan = 3; tr0.appendChild(td0); frag.appendChild(tr0);
    }
    rows.forEach(function (r) {
      var tr = document.createElement("tr"), first = document.createElement("td");
      var code = document.createElement("code");
      code.textContent = String(r[0]);
      if (link) {
        var a = document.createElement("a");
        a.href = "/traffic?ip=" + encodeURIComponent(r[0]) + "#flows";
        a.appendChild(code); first.appendChild(a);
      } else { first.appendChild(code); }
      tr.appendChild(first);
      tr.appendChild(cell(isBytes ? bytes(r[1]) : String(r[1]), "num"));
      tr.appendChild(cell(percent(r[1], total), "num muted"));
      frag.appendChild(tr);
    });
    tbody.replaceChildren(frag);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var el = document.getElementById("traffic-chart");
    if (!el || !window.uPlot) return;
    var chart = makeChart(el);
    var root = el.closest("[data-live]");
    if (!root || !el.hasAttribute("data-live")) return;
    root.addEventListener("live-update", function (ev) {
      var d = ev.detail;
      if (chart && d.rate_point) {
        try { chart.push(JSON.parse(d.rate_point)); } catch (e) { /* ignore a bad point */ }
      }
      root.querySelectorAll("tbody[data-table]").forEach(function (tbody) {
        var name = tbody.getAttribute("data-table"), rows;
        if (!d["table:" + name]) return;
        try { rows = JSON.parse(d["table:" + name]); } catch (e) { return; }
        fillTable(tbody, rows, Number(d["total:" + name] || 0));
      });
    });
  });
})();
