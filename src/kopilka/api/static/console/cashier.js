// The cashier screen: keep the scanner's field ready.  A barcode scanner types the
// digits and Enter into the focused field, so after every answer the focus goes back
// to where the next scan belongs: the panel's own field (coupon, gift card, SMS code)
// when it has one, otherwise the customer field, its text selected so a new scan
// replaces it.
(function () {
  function focusNext(panel) {
    const own = panel && panel.querySelector("[aria-invalid=true], [data-focus]");
    const target = own || document.getElementById("identifier");
    if (!target) return;
    target.focus();
    if (typeof target.select === "function") target.select();
  }
  document.addEventListener("htmx:afterSwap", (e) => {
    if (e.detail.target && e.detail.target.id === "panel") focusNext(e.detail.target);
  });
  document.addEventListener("DOMContentLoaded", () => {
    const panel = document.getElementById("panel");
    if (panel && panel.querySelector("[data-focus]")) focusNext(panel);
  });
  // Escape clears the customer field and the panel: the next customer.
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    const field = document.getElementById("identifier");
    const panel = document.getElementById("panel");
    if (!field) return;
    field.value = "";
    if (panel) panel.replaceChildren();
    field.focus();
  });
})();
