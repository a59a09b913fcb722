// The customer cabinet: refresh the one-minute till code while the card page is open.
(function () {
  "use strict";
  function refresh(box) {
    var out = box.querySelector("[data-testid=qr-token]");
    fetch(box.getAttribute("data-qr-url"), { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (doc) {
        if (!doc || !doc.token) { return; }
        if (out) { out.textContent = doc.token; }
        var img = box.querySelector("[data-testid=qr-image]");
        // The SVG is drawn by our own server from the token (segno), never from input.
        if (img && doc.svg) { img.innerHTML = doc.svg; }
      })
      .catch(function () { /* offline: keep the last token */ });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.querySelector("[data-qr-url]");
    if (!box) { return; }
    var every = parseInt(box.getAttribute("data-window"), 10) || 60;
    setInterval(function () { refresh(box); }, Math.max(10, every / 2) * 1000);
  });
})();
