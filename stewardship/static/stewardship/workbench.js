// Stewardship workbench: keyboard shortcuts, row selection, live merge preview. No dependencies.
(function () {
  "use strict";

  function typing(ev) {
    var t = ev.target;
    return t && (t.tagName === "INPUT" && t.type !== "checkbox" && t.type !== "radio" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  }

  function toggleHelp() {
    var help = document.getElementById("wb-help");
    if (help) help.hidden = !help.hidden;
  }

  // --- tables of rows (queue, exceptions): j/k to move, x to select, o/Enter to open -----------------------
  function setupRows() {
    var table = document.querySelector("[data-wb-rows]");
    if (!table) return null;
    var rows = Array.prototype.slice.call(table.querySelectorAll("tbody tr")).filter(function (r) { return !r.querySelector(".wb-empty"); });
    var current = -1;
    var counter = document.querySelector("[data-wb-selected]");
    function count() {
      if (!counter) return;
      counter.textContent = table.querySelectorAll("tbody input[type=checkbox]:checked").length + " selected";
    }
    function move(i) {
      if (!rows.length) return;
      if (current >= 0) rows[current].classList.remove("wb-current");
      current = Math.max(0, Math.min(rows.length - 1, i));
      rows[current].classList.add("wb-current");
      rows[current].scrollIntoView({ block: "nearest" });
    }
    var all = table.querySelector("[data-wb-all]");
    if (all) all.addEventListener("change", function () {
      table.querySelectorAll("tbody input[type=checkbox]").forEach(function (c) { c.checked = all.checked; });
      count();
    });
    table.addEventListener("change", count);
    rows.forEach(function (row, i) {
      row.addEventListener("click", function (ev) {
        if (ev.target.closest("a, input, button, select, label")) return;
        var href = row.getAttribute("data-href");
        if (href) window.location = href; else move(i);
      });
    });
    count();
    return {
      key: function (k) {
        if (k === "j") { move(current + 1); return true; }
        if (k === "k") { move(current - 1); return true; }
        if (k === "x" && current >= 0) {
          var box = rows[current].querySelector("input[type=checkbox]");
          if (box) { box.checked = !box.checked; count(); }
          return true;
        }
        if ((k === "o" || k === "Enter") && current >= 0) {
          var href = rows[current].getAttribute("data-href");
          var link = rows[current].querySelector("a");
          if (href) window.location = href; else if (link) link.click();
          return true;
        }
        return false;
      }
    };
  }

  // --- the compare page: chosen values update the preview, actions need a reason -------------------------
  function setupCompare() {
    var form = document.getElementById("wb-decide");
    if (!form) return null;
    var reason = document.getElementById("wb-reason");
    var hint = document.querySelector("[data-wb-hint]");

    function refreshRow(row) {
      var picked = row.querySelector("input[type=radio]:checked");
      var cell = row.querySelector("[data-preview]");
      if (!cell) return;
      var value = cell.querySelector("[data-preview-value]");
      var origin = cell.querySelector("[data-preview-origin]");
      row.querySelectorAll("td").forEach(function (td) { td.classList.remove("wb-chosen"); });
      if (picked && picked.value) {
        picked.closest("td").classList.add("wb-chosen");
        value.textContent = picked.getAttribute("data-display");
        value.classList.add("wb-changed");
        origin.textContent = "chosen: " + picked.getAttribute("data-from");
      } else if (value) {
        value.textContent = value.getAttribute("data-default");
        value.classList.remove("wb-changed");
        origin.textContent = origin.getAttribute("data-default");
      }
    }
    form.querySelectorAll("tr[data-field]").forEach(function (row) {
      row.addEventListener("change", function () { refreshRow(row); });
    });

    function preview() {
      var params = new URLSearchParams();
      form.querySelectorAll("input[name=candidates]:checked").forEach(function (c) { params.append("candidates", c.value); });
      var survivor = form.querySelector("input[name=survivor]:checked");
      if (survivor) params.set("survivor", survivor.value);
      form.querySelectorAll("input[type=radio][name^=choice__]:checked").forEach(function (r) { if (r.value) params.set(r.name, r.value); });
      var queue = form.querySelector("input[name=queue]");
      if (queue && queue.value) params.set("queue", queue.value);
      window.location = form.getAttribute("data-compare-url") + "?" + params.toString();
    }
    var showEmpty = document.querySelector("[data-wb-show-empty]");
    if (showEmpty) showEmpty.addEventListener("change", function () {
      form.querySelector(".wb-compare").classList.toggle("wb-show-empty", showEmpty.checked);
    });
    var previewButton = form.querySelector("[data-wb-preview]");
    if (previewButton) previewButton.addEventListener("click", preview);

    form.addEventListener("submit", function (ev) {
      var button = ev.submitter;
      if (button && button.hasAttribute("data-needs-reason") && reason && !reason.value.trim()) {
        ev.preventDefault();
        if (hint) hint.hidden = false;
        reason.focus();
      }
    });

    return {
      key: function (k) {
        var button = form.querySelector("[data-wb-key='" + k + "']");
        if (button) { button.click(); return true; }
        if (/^[1-9]$/.test(k)) {
          var box = form.querySelector("[data-wb-candidate='" + k + "']");
          if (box) { box.checked = !box.checked; return true; }
        }
        return false;
      }
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    var rows = setupRows();
    var compare = setupCompare();
    document.querySelectorAll("[data-wb-help]").forEach(function (a) {
      a.addEventListener("click", function (ev) { ev.preventDefault(); toggleHelp(); });
    });
    document.querySelectorAll("[data-wb-confirm]").forEach(function (b) {
      b.addEventListener("click", function (ev) {
        if (!window.confirm(b.getAttribute("data-wb-confirm"))) ev.preventDefault();
      });
    });
    var excForm = document.getElementById("wb-exc");
    if (excForm) excForm.addEventListener("submit", function (ev) {
      var b = ev.submitter;
      var reason = document.getElementById("wb-exc-reason");
      if (b && /^ignore/.test(b.value) && reason && !reason.value.trim()) {
        ev.preventDefault();
        reason.placeholder = "write why you ignore it first";
        reason.focus();
      }
    });
    document.addEventListener("keydown", function (ev) {
      if (ev.key === "Escape" && typing(ev)) { ev.target.blur(); return; }
      if (typing(ev) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      if (ev.key === "?") { toggleHelp(); ev.preventDefault(); return; }
      var handled = (compare && compare.key(ev.key)) || (rows && rows.key(ev.key));
      if (!handled) {
        var link = document.querySelector("a[data-wb-key='" + ev.key + "'], button[data-wb-key='" + ev.key + "']");
        if (link) { link.click(); handled = true; }
      }
      if (handled) ev.preventDefault();
    });
  });
})();
