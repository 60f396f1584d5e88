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
  document.addEventListener("DOMContentLoaded", function () {
    var loadedAt = Date.now();
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var serverNow = Number(el.dataset.serverNow);
      if (tick(el, serverNow, loadedAt)) {
        var timer = setInterval(function () { if (!tick(el, serverNow, loadedAt)) clearInterval(timer); }, 1000);
      }
    });
  });
})();
