// The opening record (开标记录) in the hall page: keeps the record part (templates/bidding/record_part.html)
// current and sends its forms to the record API. The part is rendered by the server
// (GET /tenders/<id>/hall/record) and reloaded whenever the hall reports a change: a `hall.record` event
// (re-dispatched by hall.js as `ebid:hall-record`), a phase change or a fresh state after a reconnect.
// Forms post JSON with the session cookie and the CSRF token; the answer is the refusal's message or the
// new record, after which the part is reloaded.

import { b64encode } from "../seal/bytes.js";

const app = document.getElementById("hall-app");
const config = JSON.parse(app.dataset.config);
const S = JSON.parse(app.dataset.strings);
const t = (key, params = {}) => (S[key] || key).replace(/%\((\w+)\)s/g, (_m, name) => (params[name] ?? ""));
const org = config.organisationId;

function panel() {
  return document.querySelector("[data-record-panel]");
}

function showError(message) {
  const box = panel() && panel().querySelector("[data-record-error]");
  if (!box) return;
  box.textContent = message || "";
  box.hidden = !message;
}

let loading = null;
let again = false;

// Reload the part; a reload asked for while one runs is done once more afterwards (events may come in bursts).
async function refresh() {
  if (loading) {
    again = true;
    return loading;
  }
  loading = (async () => {
    do {
      again = false;
      const query = org ? `?org=${org}` : "";
      const response = await fetch(`/tenders/${config.tenderId}/hall/record${query}`, { credentials: "same-origin",
        headers: { Accept: "text/html" } }).catch(() => null);
      if (!response || !response.ok) return;
      const holder = document.createElement("div");
      holder.innerHTML = await response.text();
      const fresh = holder.querySelector("[data-record-panel]");
      const current = panel();
      if (fresh && current) current.replaceWith(fresh);
    } while (again);
  })();
  try {
    await loading;
  } finally {
    loading = null;
  }
  document.dispatchEvent(new CustomEvent("ebid:record-refreshed"));
}

async function post(path, body) {
  const query = org ? `?organisation_id=${org}` : "";
  let response;
  try {
    response = await fetch(`${config.apiBase}/opening-record${path}${query}`, { method: "POST",
      credentials: "same-origin", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", "X-CSRFToken": config.csrfToken, Accept: "application/json" } });
  } catch (err) {
    throw new Error(t("network"));
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.message || t("generic", { reason: response.status }));
  return data;
}

async function fileContent(input) {
  const file = input && input.files[0];
  if (!file) return null;
  return { name: file.name, content: b64encode(new Uint8Array(await file.arrayBuffer())) };
}

const SENDERS = {
  build: (form) => post("", { window_minutes: Number(form.elements.window_minutes.value) || undefined }),
  confirm: () => post("/confirm", {}),
  object: async (form) => post("/objections", { text: form.elements.text.value,
    attachment: await fileContent(form.elements.attachment) }),
  answer: (form) => post(`/objections/${form.dataset.objectionId}/answer`, { text: form.elements.text.value }),
  sign: async (form) => {
    const file = await fileContent(form.elements.pdf);
    if (!file) throw new Error(t("record_choose_pdf"));
    return post("/revision", { pdf: file.content });
  },
};

document.addEventListener("submit", async (event) => {
  const form = event.target.closest("form[data-record-form]");
  if (!form) return;
  event.preventDefault();
  const send = SENDERS[form.dataset.recordForm];
  const buttons = form.querySelectorAll("button");
  showError("");
  buttons.forEach((b) => { b.disabled = true; });
  try {
    await send(form);
    await refresh();
  } catch (err) {
    showError(err.message);
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
});

for (const name of ["ebid:hall-record", "ebid:hall-phase", "ebid:hall-state"]) {
  document.addEventListener(name, () => { refresh(); });
}
