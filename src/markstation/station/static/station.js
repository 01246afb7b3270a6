/* markstation station: small plain script, no framework, no network beyond this station.
 * - forms with data-js post with fetch (CSRF token in a header) and show refusals in place;
 * - the item and campaign screens follow the runner through server-sent events (/events):
 *   the progress bar moves in place, anything else re-renders the screen;
 * - Esc is the Abort button. */
(function () {
  "use strict";
  var body = document.body;
  var csrf = body.dataset.csrf;
  var page = body.dataset.page;

  function flash(text) {
    var box = document.getElementById("flash");
    if (!box) return;
    box.textContent = "";
    var p = document.createElement("p");
    p.className = "flash";
    p.textContent = text;
    box.appendChild(p);
  }

  function post(url, data) {
    return fetch(url, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json" },
    }).then(function (r) {
      return r.json().catch(function () { return { ok: r.ok, error: r.statusText }; })
        .then(function (j) { j.status = r.status; return j; });
    });
  }

  var transient = { busy: true, loading: true, starting: true };

  function follow(state) {
    if (!state) return;
    if (page === "item" && state.screen !== body.dataset.screen && !transient[state.phase]) {
      window.location.reload();
    }
  }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-js")) return;
    ev.preventDefault();
    var data = new FormData(form);
    var submitter = ev.submitter;
    var url = (submitter && submitter.getAttribute("formaction")) || form.getAttribute("action");
    var buttons = form.querySelectorAll("button");
    var isAbort = form.id === "abort-form";
    if (!isAbort) buttons.forEach(function (b) { b.disabled = true; });
    post(url, data).then(function (j) {
      if (!j.ok) {
        flash(j.error || String(j.status));
        if (!isAbort) buttons.forEach(function (b) { b.disabled = false; });
        if (j.status === 409) window.setTimeout(function () { window.location.reload(); }, 800);
        return;
      }
      if (url === "/run") { window.location.href = "/item"; return; }
      follow(j.state);
    }).catch(function (err) {
      flash(String(err));
      if (!isAbort) buttons.forEach(function (b) { b.disabled = false; });
    });
  });

  document.addEventListener("keydown", function (ev) {
    if (ev.key !== "Escape") return;
    var form = document.getElementById("abort-form");
    if (!form) return;
    ev.preventDefault();
    post("/item/abort", new FormData(form));
  });

  function minutes(s) {
    if (s < 60) return s.toFixed(1) + " s";
    var m = Math.floor(s / 60), r = Math.round(s % 60);
    return m + " min " + (r < 10 ? "0" : "") + r + " s";
  }

  var ruler = document.querySelector(".ruler[data-mm]");
  if (ruler) ruler.style.width = ruler.dataset.mm + "mm";

  if (page === "item" && window.EventSource) {
    var progress = document.getElementById("progress");
    var left = document.getElementById("time-left");
    var source = new EventSource("/events");
    source.onmessage = function (ev) {
      var state;
      try { state = JSON.parse(ev.data); } catch (e) { return; }
      if (progress && state.progress) progress.setAttribute("value", String(state.progress.fraction));
      if (left && state.phase === "marking" && state.progress) {
        left.textContent = minutes(state.progress.remaining_s);
      }
      follow(state);
    };
  }
})();
