// The console's few behaviours; no inline scripts (the pages' CSP forbids them).
document.addEventListener("change", (e) => {
  const el = e.target;
  if (el.matches("[data-autosubmit]")) el.form.requestSubmit();
});
// A destructive button asks for the code of what it deletes: data-confirm-code="SUMMER24".
document.addEventListener("submit", (e) => {
  const btn = e.submitter;
  const code = btn && btn.dataset.confirmCode;
  if (code && window.prompt(btn.dataset.confirmText || ("Type " + code + " to confirm")) !== code) {
    e.preventDefault();
  }
});
