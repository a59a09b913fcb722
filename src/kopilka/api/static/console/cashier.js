// The cashier screen: keep the scanner's field ready.  A barcode scanner types the
// digits and Enter into the focused field, so after every answer the focus goes back
// to where the next scan belongs: the panel's own field (coupon, gift card, SMS code)
// when it has one, otherwise the customer field, its text selected so a new scan
// replaces it.
//
// An answer may arrive while the next scan is being typed: the field is then left alone
// (selecting its text would let the scan's remaining digits overwrite its first ones).
(function () {
  let sent = null; // the customer field's value when its lookup was sent
  function focusNext(panel) {
    const field = document.getElementById("identifier");
    const own = panel && panel.querySelector("[aria-invalid=true], [data-focus]");
    if (!own && field && sent !== null && field.value !== sent) return;
    const target = own || field;
    if (!target) return;
    target.focus();
    if (typeof target.select === "function") target.select();
  }
  document.addEventListener("htmx:beforeRequest", (e) => {
    const field = document.getElementById("identifier");
    sent = field && e.detail.elt && e.detail.elt.contains(field) ? field.value : null;
  });
  document.addEventListener("htmx:afterSwap", (e) => {
    if (e.detail.target && e.detail.target.id === "panel") focusNext(e.detail.target);
  });
  document.addEventListener("DOMContentLoaded", () => {
    const panel = document.getElementById("panel");
    if (panel && panel.querySelector("[data-focus]")) focusNext(panel);
  });
  // Escape in the customer field clears it and the panel: the next customer.  (Not in
  // a form of the panel: a registration half typed is not thrown away by a stray key.)
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    const field = document.getElementById("identifier");
    const panel = document.getElementById("panel");
    if (!field) return;
    const at = document.activeElement;
    if (at && at !== field && at !== document.body && panel && panel.contains(at)) return;
    field.value = "";
    if (panel) panel.replaceChildren();
    field.focus();
  });
})();
