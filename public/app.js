// Small behaviours of the pages, here rather than in inline handlers, which the
// Content-Security-Policy forbids (script only from our own files).

// A form marked data-reset-on-success clears itself once its htmx request succeeded
// (a refusal keeps what was typed, to be corrected).
document.addEventListener('htmx:after:request', (event) => {
  const form = event.target
  if (form instanceof HTMLFormElement && form.hasAttribute('data-reset-on-success') && event.detail?.ctx?.response?.raw?.ok) form.reset()
})

document.addEventListener('click', (event) => {
  const target = event.target
  if (!(target instanceof HTMLInputElement)) return
  // A "select all" checkbox sets every checkbox of its form with the name it gives.
  const name = target.getAttribute('data-select-all')
  if (name !== null && target.form) {
    for (const box of target.form.querySelectorAll(`input[type=checkbox][name="${CSS.escape(name)}"]`)) box.checked = target.checked
  }
  // An address to copy is selected whole on the first click.
  if (target.hasAttribute('data-select-on-click')) target.select()
})

// A form marked data-confirm asks before it is sent.
document.addEventListener('submit', (event) => {
  const form = event.target
  if (form instanceof HTMLFormElement && form.hasAttribute('data-confirm') && !confirm(form.getAttribute('data-confirm'))) event.preventDefault()
})
