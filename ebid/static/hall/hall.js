// The opening hall page (开标大厅): connects to the /hall Socket.IO namespace (the vendored client,
// window.io), joins the tender's room, renders the state it is sent and every live event, keeps the
// clock and the countdown on server time, and lets each person take the steps their role allows.
//
// A bidder decrypts here: the key file is read in the page, the content key unwrapped with WebCrypto
// (../seal/unwrap.js) and only that key is posted to the opening API, which checks it against the
// sealed envelope. The page holds no text of its own: the sentences come from data-strings.

import { b64decode, b64encode } from "../seal/bytes.js";
import { KeyFileError, readKeyFile } from "../seal/keyfile.js";
import { UnwrapError, unwrapKeyPart } from "../seal/unwrap.js";

const app = document.getElementById("hall-app");
const config = JSON.parse(app.dataset.config);
const S = JSON.parse(app.dataset.strings);
const $ = (selector) => document.querySelector(selector);
const HEARTBEAT_MS = 25000;

const hall = { phase: null, countdown: null, offset: 0, board: new Map(), presence: new Map(), presenceSeq: 0,
  early: null, resyncing: false, checkins: [], announcements: [], draws: new Map(), refreshedAtZero: false };

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

function showError(message) {
  const box = $("[data-error]");
  box.textContent = message || "";
  box.hidden = !message;
}

// --- time ------------------------------------------------------------------------------------------

const beijing = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit",
  day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
const serverNow = () => Date.now() + hall.offset;
const pad = (n) => String(n).padStart(2, "0");

function formatBeijing(ms) {
  return beijing.format(new Date(ms)).replace(/\//g, "-");
}

function tick() {
  $("[data-server-clock]").textContent = formatBeijing(serverNow());
  const label = $("[data-countdown-label]"), box = $("[data-hall-countdown]");
  if (!hall.countdown) {
    label.textContent = "";
    box.textContent = "—";
    return;
  }
  label.textContent = t(`countdown_${hall.countdown.kind}`);
  const left = Math.max(0, Date.parse(hall.countdown.end) - serverNow());
  const s = Math.floor(left / 1000), d = Math.floor(s / 86400), r = s % 86400;
  box.textContent = (d ? `${d}d ` : "") + `${pad(Math.floor(r / 3600))}:${pad(Math.floor((r % 3600) / 60))}:${pad(r % 60)}`;
  box.dataset.remaining = String(s);
  if (left === 0 && !hall.refreshedAtZero) {
    hall.refreshedAtZero = true; // the deadline or the window's end: ask for the state as it now is
    socket.emit("state", { tender_id: config.tenderId });
  }
}

// --- presence: a full list in hall.state, then deltas (bidding/hall_state.py apply_presence_changes) ---------

const ROLE_ORDER = ["host", "supervisor", "staff", "custodian", "bidder"];
const presenceKey = (row) => `${row.role}\u0000${row.name}`;

function presenceMap(rows) {
  const map = new Map();
  for (const row of rows) if (row.connections > 0) map.set(presenceKey(row), row);
  return map;
}

function applyPresenceChanges(map, changes) {
  for (const row of changes) {
    if (row.connections > 0) map.set(presenceKey(row), row);
    else map.delete(presenceKey(row)); // 0: gone
  }
}

function presenceList() { // as presence_view orders it: role, then name
  const rank = (role) => (ROLE_ORDER.includes(role) ? ROLE_ORDER.indexOf(role) : 99);
  return [...hall.presence.values()].sort((a, b) => rank(a.role) - rank(b.role)
    || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

const isPresenceRow = (row) => row && typeof row.role === "string" && typeof row.name === "string"
  && Number.isInteger(row.connections) && row.connections >= 0;
const isPresenceDelta = (p) => p && Number.isInteger(p.seq) && p.seq > 0 && Array.isArray(p.changes)
  && p.changes.every(isPresenceRow);

let resyncs = 0;
function resync() { // ask for the whole state again (at most one request in flight)
  if (hall.resyncing) return;
  const mine = ++resyncs;
  hall.resyncing = true;
  socket.emit("state", { tender_id: config.tenderId }, () => { if (mine === resyncs) hall.resyncing = false; });
}

function onPresence(p) {
  if (hall.early) { // joined, the state not here yet: keep the deltas for it (the room is joined first)
    hall.early.push(p);
    return;
  }
  if (!isPresenceDelta(p)) { // a payload this page does not understand: start again from the whole state
    resync();
    return;
  }
  if (p.full) { // the whole list (the room's first broadcast, or its record was renewed)
    hall.presence = presenceMap(p.changes);
    hall.presenceSeq = p.seq;
  } else if (p.seq <= hall.presenceSeq) {
    return; // already in the list this page has (a late or repeated delta)
  } else {
    if (p.seq > hall.presenceSeq + 1) resync(); // a broadcast was missed: apply this one, then the full state
    applyPresenceChanges(hall.presence, p.changes);
    hall.presenceSeq = p.seq;
  }
  renderSide();
}

// --- rendering -------------------------------------------------------------------------------------

function renderPhase() {
  $("[data-phase-label]").textContent = hall.phase ? t(`phase_${hall.phase}`) : "—";
  app.dataset.phase = hall.phase || "";
}

function resultCell(row) {
  const cell = el("td", { "data-result": "" });
  if (row.status === "decrypted") cell.append(row.method ? t(`method_${row.method}`) : t("status_decrypted"));
  if (row.status === "failed" && row.failure) {
    const f = row.failure;
    cell.append(f.decided ? `${t(`cause_${f.cause}`)} · ${t(`outcome_${f.outcome}`)}` : t("cause_pending"));
    const template = document.querySelector("template[data-failure-form]");
    if (!f.decided && template) {
      const form = template.content.firstElementChild.cloneNode(true);
      form.dataset.bidOpening = row.id;
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const data = new FormData(form);
        act("decide_failure", { bid_opening_id: row.id, cause: data.get("cause"), reason: data.get("reason"),
          evidence: data.get("evidence") });
      });
      cell.append(form);
    }
  }
  return cell;
}

function renderBoard() {
  const body = $("[data-board]");
  body.replaceChildren();
  const rows = [...hall.board.values()].sort((a, b) => (a.lot === b.lot ? String(a.bidder).localeCompare(b.bidder)
    : String(a.lot).localeCompare(b.lot)));
  if (!rows.length) body.append(el("tr", {}, el("td", { colspan: 8, class: "muted" }, t("no_bids"))));
  for (const row of rows) {
    const form = row.status === "decrypted" ? row.form || {} : {};
    const manager = form.project_manager ? form.project_manager.name : "";
    body.append(el("tr", { "data-row-id": row.id, "data-status": row.status, "data-bidder": row.bidder },
      el("td", {}, row.lot), el("td", {}, row.bidder || "—"),
      el("td", {}, el("span", { class: `badge hall-${row.status}` }, t(`status_${row.status}`))),
      el("td", { class: "num", "data-price": "" }, form.price ? `${form.price} ${form.currency || ""}`.trim() : ""),
      el("td", {}, form.duration_days ?? ""), el("td", {}, form.quality ?? ""), el("td", {}, manager),
      resultCell(row)));
  }
}

function renderList(selector, items, render, empty) {
  const list = $(selector);
  list.replaceChildren();
  if (!items.length) list.append(el("li", { class: "muted" }, t(empty)));
  for (const item of items) list.append(render(item));
}

function renderSide() {
  renderList("[data-presence]", presenceList(), (p) => el("li", { "data-role": p.role },
    `${p.name} · ${t(`role_${p.role}`)}`, p.connections > 1 ? ` (${t("connections", { n: p.connections })})` : ""),
  "nobody");
  renderList("[data-checkins]", hall.checkins, (c) => el("li", {}, `${formatBeijing(Date.parse(c.at)).slice(11)} ${c.organisation}`),
    "no_checkins");
  renderList("[data-draws]", [...hall.draws.values()], (d) => el("li", { "data-draw": d.name },
    d.result !== null && d.result !== undefined ? `${d.name} = ${d.result} · ${t("draw_seed")} ${d.seed}`
      : `${d.name}: ${t("draw_pending")} · ${t("draw_commitment")} ${d.commitment}`), "no_draws");
  renderList("[data-announcements]", hall.announcements, (a) => el("li", { "data-kind": a.kind },
    el("span", { class: "muted small" }, formatBeijing(Date.parse(a.at)).slice(11)), " ", a.text), "no_announcements");
}

function render() {
  renderPhase();
  renderBoard();
  renderSide();
  tick();
}

function applyState(state) {
  hall.offset = Date.parse(state.server_time) - Date.now();
  hall.phase = state.phase;
  hall.countdown = state.countdown;
  hall.refreshedAtZero = false;
  hall.board = new Map(state.board.map((row) => [row.id, row]));
  const newer = hall.presenceSeq > (state.presence_seq || 0); // a delta overtook this state
  hall.resyncing = false; // the state asked for has come
  hall.presence = presenceMap(Array.isArray(state.presence) ? state.presence : []);
  hall.presenceSeq = Number.isInteger(state.presence_seq) ? state.presence_seq : 0;
  hall.checkins = state.checkins;
  hall.announcements = state.announcements;
  hall.draws = new Map(state.draws.map((d) => [d.name, d]));
  const early = hall.early || [];
  hall.early = null;
  render();
  early.forEach(onPresence); // those newer than the state apply, the others are in it already
  if (newer) resync(); // the list is older than a delta already seen: ask again
  document.dispatchEvent(new CustomEvent("ebid:hall-state", { detail: { phase: state.phase } })); // record.js
}

// --- the connection --------------------------------------------------------------------------------

const socket = window.io(config.namespace, { path: config.socketPath });

function setConnected(connected) {
  $("[data-connection]").textContent = connected ? t("connected") : t("disconnected");
  $("[data-connection-dot]").classList.toggle("live", connected);
  app.dataset.connected = connected ? "yes" : "no";
}

socket.on("connect", () => {
  setConnected(true);
  hall.early = []; // a new connection joins again: its state comes after the room's first deltas
  socket.emit("join", { tender_id: config.tenderId, organisation_id: config.organisationId }, (answer) => {
    if (!answer || !answer.ok) showError(answer ? answer.message : t("network"));
  });
});
socket.on("disconnect", () => setConnected(false));
socket.on("connect_error", (err) => {
  setConnected(false);
  if (err && err.data && err.data.message) showError(t("refused", { reason: err.data.message }));
});
socket.on("hall.state", applyState);
socket.on("hall.presence", onPresence);
socket.on("hall.board", (row) => { hall.board.set(row.id, row); renderBoard(); });
socket.on("hall.phase", (p) => {
  hall.phase = p.phase;
  hall.countdown = p.phase === "decrypting" && p.decryption_deadline
    ? { kind: "decryption", end: p.decryption_deadline } : null;
  hall.refreshedAtZero = false;
  renderPhase();
  tick();
  document.dispatchEvent(new CustomEvent("ebid:hall-phase", { detail: p })); // record.js shows the record part
});
socket.on("hall.checkin", (c) => {
  if (!hall.checkins.some((x) => x.organisation === c.organisation)) hall.checkins.push(c);
  renderSide();
});
socket.on("hall.announcement", (a) => {
  if (!hall.announcements.some((x) => x.id === a.id)) hall.announcements.push(a);
  renderSide();
});
socket.on("hall.draw", (d) => { hall.draws.set(d.name, d); renderSide(); });
socket.on("hall.record", (payload) => document.dispatchEvent(new CustomEvent("ebid:hall-record", { detail: payload })));
setInterval(() => { if (socket.connected) socket.emit("heartbeat", {}); }, HEARTBEAT_MS);
setInterval(tick, 500);

// --- actions ---------------------------------------------------------------------------------------

function act(action, extra = {}, done = null) {
  showError("");
  socket.emit("action", { tender_id: config.tenderId, action, ...extra }, (answer) => {
    if (!answer || !answer.ok) showError(answer ? answer.message : t("network"));
    else if (done) done();
  });
}

document.querySelectorAll("[data-action]").forEach((button) => {
  button.addEventListener("click", () => {
    const target = button.dataset.action === "check_in" ? $("[data-checkin-result]") : null;
    act(button.dataset.action, { name: button.dataset.name }, () => { if (target) target.textContent = t("checked_in"); });
  });
});

// --- decrypting one's own bid in the page -----------------------------------------------------------

function apiUrl(path) {
  const query = config.organisationId ? `?organisation_id=${config.organisationId}` : "";
  return `${config.apiBase}${path}${query}`;
}

async function api(method, path, body = null) {
  let response;
  try {
    response = await fetch(apiUrl(path), { method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": config.csrfToken, Accept: "application/json" },
      body: body ? JSON.stringify(body) : null });
  } catch (err) {
    throw new Error(t("network"));
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.message || t("generic", { reason: response.status }));
  return data;
}

function keyMessage(err) {
  if (err instanceof UnwrapError) return t(err.code);
  if (err instanceof KeyFileError) {
    return ["passphrase_needed", "wrong_passphrase"].includes(err.code) ? t(err.code) : t("key_file", { reason: err.code });
  }
  return err.message || t("generic", { reason: String(err) });
}

async function decrypt(publicId, status) {
  const file = $("[data-key-file]").files[0];
  if (!file) throw new Error(t("decrypt_choose_key"));
  status.textContent = t("decrypt_reading");
  const key = await readKeyFile(await file.text(), $("[data-key-passphrase]").value);
  const { header } = await api("GET", `/bids/${publicId}/header`);
  status.textContent = t("decrypt_unwrapping");
  const { part } = await unwrapKeyPart(b64decode(header), key);
  status.textContent = t("decrypt_sending");
  await api("POST", `/bids/${publicId}/key`, { content_key: b64encode(part) });
  part.fill(0); // the key has left for the platform; do not keep a copy in the page
  status.textContent = t("decrypt_done");
}

document.querySelectorAll("[data-decrypt]").forEach((button) => {
  button.addEventListener("click", async () => {
    const status = document.querySelector(`[data-decrypt-result="${button.dataset.decrypt}"]`);
    showError("");
    button.disabled = true;
    try {
      await decrypt(button.dataset.decrypt, status);
    } catch (err) {
      status.textContent = "";
      showError(keyMessage(err));
    } finally {
      button.disabled = false;
    }
  });
});
