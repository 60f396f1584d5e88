// The bidder's clarification page (澄清): connects to the /room Socket.IO namespace, asks for the
// committee's requests to its organisations in this tender ("watch_clarifications") and shows new ones
// as they are asked, each with a form to answer (a plain POST to the page). No text of its own: the
// sentences come from data-strings.

const app = document.getElementById("clarifications-app");
const config = JSON.parse(app.dataset.config);
const S = JSON.parse(app.dataset.strings);
const list = app.querySelector("[data-clarification-list]");
const items = new Map();

function t(key, params = {}) {
  return (S[key] || key).replace(/%\((\w+)\)s/g, (_m, name) => (params[name] ?? ""));
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) node.setAttribute(name, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

const beijing = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit",
  day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false });
const when = (iso) => (iso ? `${beijing.format(new Date(iso)).replace(/\//g, "-")} (北京时间)` : "");

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
