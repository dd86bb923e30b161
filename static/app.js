// gatewatch: live updates for server-rendered pages. Pages work without this file.
// An element with data-live="/events/..." opens one Server-Sent Events stream; each
// "update" event is a JSON object whose keys name descendants with data-field.
(function () {
  "use strict";
  function connect(root) {
    var url = root.getAttribute("data-live");
    if (!url || !window.EventSource) return;
    var source = new EventSource(url);
    source.addEventListener("update", function (ev) {
      var data;
      try { data = JSON.parse(ev.data); } catch (e) { return; }
      Object.keys(data).forEach(function (key) {
        root.querySelectorAll('[data-field="' + key + '"]').forEach(function (el) {
          // A <progress> shows its value attribute, not its text.
          if (el.tagName === "PROGRESS") { el.value = Number(data[key]) || 0; return; }
          if (el.textContent !== data[key]) el.textContent = data[key];
        });
      });
      root.classList.remove("stale");
      // Pages with more than text to update (charts, tables) listen for this.
      root.dispatchEvent(new CustomEvent("live-update", { detail: data }));
    });
    source.addEventListener("error", function () { root.classList.add("stale"); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(connect);
  });
})();
