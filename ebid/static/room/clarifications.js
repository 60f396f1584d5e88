// The bidder's clarification page (澄清): connects to the /room Socket.IO namespace, asks for the
// committee's requests to its organisations in this tender ("watch_clarifications") and shows new ones
// as they are asked, each with a form to answer (a plain POST to the page). No text of its own: the
// sentences come from data-strings.

import { el, translator, when } from "./dom.js";

const app = document.getElementById("clarifications-app");
const config = JSON.parse(app.dataset.config);
const t = translator(JSON.parse(app.dataset.strings));
const list = app.querySelector("[data-clarification-list]");
const items = new Map();

function form(c) {
  const f = el("form", { method: "post", action: config.action, class: "room-form", "data-answer-form": "" },
    el("input", { type: "hidden", name: "csrf_token", value: config.csrfToken }),
    el("input", { type: "hidden", name: "clarification_id", value: c.id }),
    el("textarea", { name: "answer", required: "", "aria-label": t("answer") }),
    el("button", { type: "submit" }, t("send")));
  return f;
}

function render(c) {
  const old = document.getElementById(`c${c.id}`);
  const typing = old && old.querySelector("textarea") && old.querySelector("textarea").value;
  if (old && old.dataset.status === c.status && !c.answer) return; // nothing new; keep what is being typed
  const node = el("article", { class: "card clar-item", id: `c${c.id}`, "data-clarification": c.id, "data-status": c.status },
    el("p", { class: "small muted" }, `${c.lot} · ${c.organisation} · ${t(`status_${c.status}`)} · ${t("due", { at: when(c.due_at) })}`),
    el("p", { class: "prewrap", "data-question": "" }, c.question));
  if (c.answer) {
    node.append(el("p", { class: "prewrap", "data-answer": "" }, el("strong", {}, `${t("answer")}: `), c.answer));
  } else if (c.status === "open") {
    const f = form(c);
    if (typing) f.querySelector("textarea").value = typing;
    node.append(f);
  }
  if (old) old.replaceWith(node);
  else list.append(node);
  const none = list.querySelector("[data-none]");
  if (none) none.remove();
}

function setConnected(connected) {
  app.dataset.connected = connected ? "yes" : "no";
  document.querySelector("[data-connection]").textContent = connected ? t("connected") : t("disconnected");
  document.querySelector("[data-connection-dot]").classList.toggle("live", connected);
}

const socket = window.io(config.namespace, { path: config.socketPath });
socket.on("connect", () => {
  socket.emit("watch_clarifications", { tender_id: config.tenderId }, (answer) => {
    if (!answer || !answer.ok) return;
    for (const c of answer.clarifications) { items.set(c.id, c); render(c); }
    setConnected(true);
  });
});
socket.on("disconnect", () => setConnected(false));
socket.on("connect_error", () => setConnected(false));
socket.on("room.clarification", (c) => {
  if (!c || !c.id || !c.question) return;
  items.set(c.id, c);
  render(c);
});
