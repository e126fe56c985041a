// backupbot's one script (the Content-Security-Policy allows no other): the side-by-side /
// unified toggle, remembered in localStorage; folds of unchanged lines and "Show more changes",
// fetched from the bot; and View / Compare enabled by how many versions are ticked.
// Loaded in <head> so the remembered layout applies before the page is drawn.
(function () {
  "use strict";
  var KEY = "backupbot.layout";
  var root = document.documentElement;
  root.classList.add("js");
  function stored() {
    try { return localStorage.getItem(KEY); } catch (e) { return null; }
  }
  if (stored() === "uni") { root.classList.add("layout-uni"); }

  function setLayout(value) {
    root.classList.toggle("layout-uni", value === "uni");
    try { localStorage.setItem(KEY, value); } catch (e) { /* private mode: not remembered */ }
    showLayout();
  }
  function showLayout() {
    var current = root.classList.contains("layout-uni") ? "uni" : "sbs";
    document.querySelectorAll("[data-layout]").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.layout === current));
    });
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      });
  }
  function number(n) { return n.toLocaleString("en-US"); }

  // -- folds ----------------------------------------------------------------------------------
  function foldRows(pair, key) { return pair.querySelectorAll('tr.fold[data-fold="' + key + '"]'); }

  function drawFold(row, step) {
    var count = Number(row.dataset.count);
    var cell = row.firstElementChild;
    cell.textContent = "";
    function add(label, dir, n) {
      var b = document.createElement("button");
      b.type = "button"; b.className = "unfold"; b.dataset.dir = dir; b.dataset.n = String(n);
      b.textContent = label;
      cell.appendChild(b);
    }
    if (count <= 2 * step) {
      add("Show " + number(count) + " unchanged line" + (count === 1 ? "" : "s"), "down", count);
    } else {
      add("↓ Show " + step + " more", "down", step);
      add("↑ Show " + step + " more", "up", step);
      cell.appendChild(document.createTextNode(number(count) + " unchanged lines"));
    }
  }

  function unfold(button) {
    var row = button.closest("tr.fold");
    var pair = row.closest(".pair");
    var step = Number(pair.dataset.foldStep);
    var key = row.dataset.fold, start = Number(row.dataset.start), old = Number(row.dataset.old);
    var count = Number(row.dataset.count), n = Math.min(Number(button.dataset.n), count);
    var up = button.dataset.dir === "up";
    var from = up ? start + count - n : start, oldFrom = up ? old + count - n : old;
    button.disabled = true;
    getJSON(row.dataset.lines + "?start=" + from + "&count=" + n + "&old=" + oldFrom)
      .then(function (data) {
        foldRows(pair, key).forEach(function (r) {
          var html = r.closest("table").classList.contains("uni") ? data.uni : data.sbs;
          r.insertAdjacentHTML(up ? "afterend" : "beforebegin", html);
          var left = count - n;
          if (left <= 0) { r.remove(); return; }
          r.dataset.count = String(left);
          if (!up) { r.dataset.start = String(start + n); r.dataset.old = String(old + n); }
          drawFold(r, step);
        });
      })
      .catch(function () { button.disabled = false; button.textContent = "Could not load: try again"; });
  }

  // -- more changes ---------------------------------------------------------------------------
  function more(link) {
    var pair = link.closest(".pair");
    link.textContent = "Loading…";
    getJSON(link.getAttribute("href") + "&fragment=1").then(function (data) {
      pair.querySelector("table.diff.sbs").insertAdjacentHTML("beforeend", "<tbody>" + data.sbs + "</tbody>");
      pair.querySelector("table.diff.uni").insertAdjacentHTML("beforeend", "<tbody>" + data.uni + "</tbody>");
      decorate(pair);
      if (data.more) { link.setAttribute("href", data.more); link.textContent = "Show more changes"; }
      else { link.parentNode.remove(); }
    }).catch(function () { link.textContent = "Could not load: try again"; });
  }

  function decorate(scope) {
    var pairs = scope.matches && scope.matches(".pair") ? [scope] : scope.querySelectorAll(".pair");
    pairs.forEach(function (pair) {
      var step = Number(pair.dataset.foldStep);
      pair.querySelectorAll("tr.fold").forEach(function (row) {
        if (!row.querySelector("button")) { drawFold(row, step); }
      });
    });
  }

  // -- the version picker ---------------------------------------------------------------------
  function pick(form) {
    var n = form.querySelectorAll('input[name="v"]:checked').length;
    form.querySelectorAll("button[data-needs]").forEach(function (b) {
      var needs = Number(b.dataset.needs);
      b.disabled = needs === 1 ? n !== 1 : n < needs;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    showLayout();
    decorate(document);
    var form = document.getElementById("pick");
    if (form) { pick(form); form.addEventListener("change", function () { pick(form); }); }
    document.addEventListener("click", function (event) {
      var t = event.target;
      if (!(t instanceof Element)) { return; }
      var layout = t.closest("[data-layout]");
      if (layout) { setLayout(layout.dataset.layout); return; }
      var b = t.closest("button.unfold");
      if (b) { unfold(b); return; }
      var link = t.closest("a.more");
      if (link) { event.preventDefault(); more(link); }
    });
  });
}());
