// Programs area: the promotion form's rows (show the inputs of the chosen kind, add and
// remove rows) and the simulator's basket lines.  No inline scripts (CSP).
(function () {
  function showKind(row) {
    const sel = row.querySelector("[data-kind-select]");
    if (!sel) return;
    row.querySelectorAll("[data-for]").forEach((el) => {
      el.hidden = !el.dataset.for.split(" ").includes(sel.value);
    });
  }
  function showWho(form) {
    const checked = form.querySelector("input[name=who]:checked");
    const who = checked ? checked.value : "described";
    form.querySelectorAll("[data-who]").forEach((el) => { el.hidden = el.dataset.who !== who; });
  }
  function init(root) {
    root.querySelectorAll("[data-row]").forEach(showKind);
    root.querySelectorAll("#sim-form").forEach(showWho);
  }
  function nextIndex(container, prefix) {
    let max = -1;
    container.querySelectorAll("[name]").forEach((el) => {
      const m = el.name.match(new RegExp("^" + prefix + "(\\d+)_"));
      if (m) max = Math.max(max, parseInt(m[1], 10));
    });
    return max + 1;
  }
  function changed(el) {
    const form = el.closest("form");
    if (form) form.dispatchEvent(new Event("rows-changed", { bubbles: true }));
  }
  document.addEventListener("change", (e) => {
    const el = e.target;
    if (el.matches("[data-kind-select]")) showKind(el.closest("[data-row]"));
    if (el.matches("input[name=who]")) showWho(el.form);
  });
  document.addEventListener("click", (e) => {
    const add = e.target.closest("[data-add-row]");
    if (add) {
      const prefix = add.dataset.addRow;
      const tpl = document.getElementById("tpl-" + prefix);
      const container = document.getElementById(prefix + "-rows");
      if (!tpl || !container) return;
      const i = nextIndex(container, prefix);
      const html = tpl.innerHTML.replaceAll("__i__", String(i));
      container.insertAdjacentHTML("beforeend", html);
      const row = container.lastElementChild;
      showKind(row);
      const first = row.querySelector("select, input");
      if (first) first.focus();
      return;
    }
    const remove = e.target.closest("[data-remove-row]");
    if (remove) {
      const row = remove.closest("[data-row]");
      const form = row.closest("form");
      row.remove();
      if (form) form.dispatchEvent(new Event("rows-changed", { bubbles: true }));
    }
  });
  document.addEventListener("DOMContentLoaded", () => init(document));
  document.addEventListener("htmx:afterSwap", (e) => init(e.target));
  void changed;
})();
