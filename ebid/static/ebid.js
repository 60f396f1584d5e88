// Countdowns run on server time: the page states the server's "now" and the deadline, both in UTC
// milliseconds, and the browser only measures elapsed time since the page loaded.
(function () {
  function pad(n) { return String(n).padStart(2, "0"); }
  function tick(el, serverNow, loadedAt) {
    var deadline = Number(el.dataset.deadline);
    var remaining = deadline - (serverNow + (Date.now() - loadedAt));
    if (remaining <= 0) { el.textContent = el.dataset.doneText || "00:00:00"; return false; }
    var s = Math.floor(remaining / 1000), d = Math.floor(s / 86400);
    s -= d * 86400;
    var text = pad(Math.floor(s / 3600)) + ":" + pad(Math.floor((s % 3600) / 60)) + ":" + pad(s % 60);
    el.textContent = (d > 0 ? d + (el.dataset.dayUnit || "d ") : "") + text;
    return true;
  }

  // "Add a lot": copy the last lot row with empty inputs and the next index in every name/id.
  function addRow(button) {
    var container = document.getElementById(button.dataset.addRow);
    var rows = container.querySelectorAll("[data-row]");
    var last = rows[rows.length - 1];
    var index = rows.length;
    var copy = last.cloneNode(true);
    copy.querySelectorAll("input, textarea, select").forEach(function (input) {
      ["name", "id"].forEach(function (attr) {
        var v = input.getAttribute(attr);
        if (v) input.setAttribute(attr, v.replace(/\.\d+\./, "." + index + "."));
      });
      if (input.tagName !== "SELECT") input.value = "";
    });
    copy.querySelectorAll("label").forEach(function (label) {
      var f = label.getAttribute("for");
      if (f) label.setAttribute("for", f.replace(/\.\d+\./, "." + index + "."));
    });
    copy.querySelectorAll(".field-error").forEach(function (e) { e.remove(); });
    copy.querySelectorAll(".has-error").forEach(function (e) { e.classList.remove("has-error"); });
    var number = copy.querySelector("[data-row-number]");
    if (number) number.textContent = String(index + 1);
    container.appendChild(copy);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var loadedAt = Date.now();
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var serverNow = Number(el.dataset.serverNow);
      if (tick(el, serverNow, loadedAt)) {
        var timer = setInterval(function () { if (!tick(el, serverNow, loadedAt)) clearInterval(timer); }, 1000);
      }
    });
    document.querySelectorAll("[data-add-row]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function (event) { event.preventDefault(); addRow(button); });
    });
    document.querySelectorAll("[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  });
})();
