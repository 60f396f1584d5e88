// The scoring room page (评标室): connects to the /room Socket.IO namespace (the vendored client,
// window.io), joins the evaluation's room, renders the state it is sent and every live event.
//
// A member scores each bid on their own sheet: every change is saved as a draft 600 ms after the last
// keystroke (with the revision it was based on), so a reload or a dropped connection loses nothing; the
// sheet is submitted per bid. Other members' values appear only as the visibility rule allows (the
// server decides); everyone sees everyone's progress. Supervisors see the same page read-only, with the
// suspend/resume control. The page holds no text of its own: the sentences come from data-strings.

import { el, translator, when } from "./dom.js";
import { sheetEditor } from "./sheet.js";

const app = document.getElementById("room-app");
const config = JSON.parse(app.dataset.config);
const t = translator(JSON.parse(app.dataset.strings));
const $ = (selector) => document.querySelector(selector);
const $$ = (selector) => [...document.querySelectorAll(selector)];
const HEARTBEAT_MS = 25000;
const ACK_MS = 15000;
const isMember = config.role === "member";

const room = { state: null, criteria: [], bids: [], members: [], progress: new Map(), sheets: new Map(),
  clarifications: new Map(), disputes: new Map(), warnings: [], chair: {}, presence: [], selected: null,
  drafts: new Map() };

function showError(message) {
  const box = $("[data-error]");
  box.textContent = message || "";
  box.hidden = !message;
}

const key = (memberId, bidId) => `${memberId}:${bidId}`;
const memberName = (id) => (room.members.find((m) => m.member_id === id) || {}).name || `#${id}`;
const bidOf = (id) => room.bids.find((b) => b.bid_opening_id === id);
const bidLabel = (id) => { const b = bidOf(id); return b ? `${b.lot} · ${b.bidder}` : `#${id}`; };
const evaluated = () => room.bids.filter((b) => b.evaluated);
const readOnly = () => !isMember || ["suspended", "complete"].includes(room.state && room.state.status);

// --- the connection and actions -----------------------------------------------------------------------

const socket = window.io(config.namespace, { path: config.socketPath });

function act(name, args = {}, done = null) { // an answer that does not come (connection lost) times out
  showError("");
  socket.timeout(ACK_MS).emit("action", { evaluation_id: config.evaluationId, name, ...args }, (err, answer) => {
    const result = !err && answer ? answer : { ok: false, code: "network", message: t("network") };
    if (!result.ok) showError(result.message);
    if (done) done(result);
  });
}

const sheets = sheetEditor({ room, config, t, act, readOnly, onPassFail: () => renderSheet(),
  onSubmitted: () => { renderSheet(); renderBids(); } });

function setConnected(connected) {
  $("[data-connection]").textContent = connected ? t("connected") : t("disconnected");
  $("[data-connection-dot]").classList.toggle("live", connected);
  app.dataset.connected = connected ? "yes" : "no";
}

// An event that arrives while a state request (join, state) is out may be older or newer than the state read
// for it; either way one more request follows, so the page ends on the latest state. Presence is not in it.
let events = 0, fetching = false, again = false;
socket.onAny((name) => { if (name !== "room.presence") events += 1; });

function join() {
  const mark = events;
  socket.emit("join", { evaluation_id: config.evaluationId }, (answer) => {
    if (!answer || !answer.ok) { showError(answer ? answer.message : t("network")); return; }
    applyState(answer.state);
    if (answer.presence) onPresence(answer.presence);
    setConnected(true);
    sheets.retry(); // typing whose save did not reach the server before the connection dropped
    if (events !== mark) resync(); // events crossed the state on its way: read it once more
  });
}

function resync() { // the whole state again
  if (fetching) { again = true; return; }
  fetching = true;
  const mark = events;
  socket.timeout(ACK_MS).emit("state", { evaluation_id: config.evaluationId }, (err, answer) => {
    fetching = false;
    if (!err && answer && answer.ok) { applyState(answer.state); if (answer.presence) onPresence(answer.presence); }
    if (again || events !== mark) { again = false; resync(); }
  });
}

socket.on("connect", join);
socket.on("disconnect", () => setConnected(false));
socket.on("connect_error", (err) => {
  setConnected(false);
  if (err && err.data && err.data.message) showError(t("refused", { reason: err.data.message }));
});
setInterval(() => { if (socket.connected) socket.emit("heartbeat", {}); }, HEARTBEAT_MS);

// --- state ---------------------------------------------------------------------------------------------

function applyState(state) {
  room.state = state;
  room.criteria = state.criteria || [];
  room.bids = state.bids || [];
  room.members = state.members || [];
  room.chair = state.chair || {};
  room.progress = new Map((state.progress || []).map((p) => [key(p.member_id, p.bid_opening_id), p]));
  room.sheets = new Map((state.sheets || []).map((s) => [key(s.member_id, s.bid_opening_id), s]));
  room.clarifications = new Map((state.clarifications || []).map((c) => [c.id, c]));
  room.disputes = new Map((state.disputes || []).map((d) => [d.id, d]));
  room.warnings = state.warnings || [];
  for (const sheet of room.sheets.values()) if (sheet.member_id === config.memberId) sheets.take(sheet);
  if (room.selected === null && evaluated().length) room.selected = evaluated()[0].bid_opening_id;
  renderAll();
}

// --- rendering -------------------------------------------------------------------------------------------

function renderStatus() {
  const s = room.state || {};
  app.dataset.status = s.status || "";
  $("[data-status-label]").textContent = s.status ? t(`status_${s.status}`) : "—";
  const banner = $("[data-suspended]");
  banner.hidden = s.status !== "suspended";
  banner.textContent = s.status === "suspended" ? t("suspended", { reason: s.reason || "" }) : "";
  const resume = $("[data-resume]"), suspend = $("[data-suspend-form]");
  if (resume) resume.hidden = s.status !== "suspended";
  if (suspend) suspend.hidden = s.status === "suspended" || s.status === "complete";
}

function renderBids() {
  const body = $("[data-bids]");
  body.replaceChildren();
  if (!room.bids.length) body.append(el("tr", {}, el("td", { colspan: 8, class: "muted" }, t("no_bids"))));
  for (const b of room.bids) {
    const mine = isMember ? room.progress.get(key(config.memberId, b.bid_opening_id)) : null;
    const files = el("td", {});
    if (b.bid_file_url) files.append(el("a", { href: b.bid_file_url, "data-bid-file": b.bid_opening_id }, t("bid_file")), " ");
    if (b.record_pdf_url) files.append(el("a", { href: b.record_pdf_url, class: "small" }, t("record_pdf")));
    const pick = b.evaluated ? el("button", { type: "button", class: "secondary", "data-open-sheet": b.bid_opening_id,
      onclick: () => { room.selected = b.bid_opening_id; renderBids(); renderSheet(); } },
    mine ? `${t("progress", mine)}${mine.submitted ? " ✓" : ""}` : (isMember ? t("draft") : "…")) : "—";
    body.append(el("tr", { "data-bid": b.bid_opening_id, "data-status": b.status,
      class: room.selected === b.bid_opening_id ? "selected" : null },
    el("td", {}, b.lot), el("td", {}, b.bidder), el("td", { class: "num", "data-price": "" }, b.price ?? ""),
    el("td", {}, b.duration_days ?? ""), el("td", {}, b.quality ?? ""),
    el("td", {}, b.project_manager ? b.project_manager.name : ""), files, el("td", {}, pick)));
  }
  for (const select of $$("[data-bid-select]")) {
    const value = select.value;
    select.replaceChildren(...evaluated().map((b) => el("option", { value: b.bid_opening_id }, bidLabel(b.bid_opening_id))));
    if (value) select.value = value;
  }
  for (const select of $$("[data-criterion-select]")) {
    const value = select.value;
    select.replaceChildren(...room.criteria.filter((c) => c.kind === "pass_fail")
      .map((c) => el("option", { value: c.code }, `${c.code} ${c.title}`)));
    if (value) select.value = value;
  }
}

function renderSheet() {
  const panel = $("[data-sheet-panel]");
  const bidId = room.selected;
  panel.hidden = bidId === null;
  if (bidId === null) return;
  panel.dataset.bid = bidId;
  $("[data-sheet-title]").textContent = bidLabel(bidId);
  const box = $("[data-sheet]"), actions = $("[data-sheet-actions]");
  box.replaceChildren();
  actions.replaceChildren();
  if (isMember) sheets.render(box, actions, bidId);
  renderOthers(bidId);
}

function renderOthers(bidId) { // the sheets this viewer may see, other than their own
  const box = $("[data-others]");
  box.replaceChildren();
  const sheets = [...room.sheets.values()].filter((s) => s.bid_opening_id === bidId && s.member_id !== config.memberId);
  const hidden = room.members.filter((m) => m.member_id !== config.memberId
    && !sheets.some((s) => s.member_id === m.member_id));
  if (!sheets.length && !hidden.length) return;
  const head = el("tr", {}, el("th", {}, t("member")), ...room.criteria.map((c) => el("th", { title: c.title }, c.code)));
  const rows = sheets.map((s) => el("tr", { "data-other-sheet": s.member_id, "data-submitted": s.submitted ? "yes" : "no" },
    el("td", {}, memberName(s.member_id), s.submitted ? " ✓" : ""),
    ...room.criteria.map((c) => el("td", { "data-value": c.code }, s.values[c.code] ?? ""))));
  for (const m of hidden) {
    rows.push(el("tr", { "data-hidden-sheet": m.member_id }, el("td", {}, m.name),
      el("td", { colspan: room.criteria.length, class: "muted" }, t("hidden_sheet"))));
  }
  box.append(el("h3", { class: "small" }, t("all_sheets")),
    el("div", { class: "table-wrap" }, el("table", { class: "room-others" }, el("thead", {}, head), el("tbody", {}, ...rows))));
}

function renderProgress() {
  const bids = evaluated();
  $("[data-progress-head]").replaceChildren(el("tr", {}, el("th", {}, t("member")),
    ...bids.map((b) => el("th", { title: b.bidder }, `${b.lot} ${b.bidder}`))));
  const body = $("[data-progress]");
  body.replaceChildren(...room.members.map((m) => el("tr", { "data-progress-member": m.member_id },
    el("td", { style: "text-align:left" }, m.name, m.member_id === config.memberId ? ` (${t("you")})` : ""),
    ...bids.map((b) => {
      const p = room.progress.get(key(m.member_id, b.bid_opening_id))
        || { filled: 0, total: room.criteria.length, submitted: false };
      return el("td", { "data-progress-cell": key(m.member_id, b.bid_opening_id), "data-filled": p.filled,
        "data-total": p.total, "data-submitted": p.submitted ? "yes" : "no" },
      t("progress", p), p.submitted ? " ✓" : "");
    }))));
}

function renderMembers() {
  const present = new Set(room.presence.filter((p) => p.member_id).map((p) => p.member_id));
  const chairId = room.chair.chair_member_id ?? null;
  const counts = new Map((room.chair.counts || []).map((c) => [c.candidate_id, c.votes]));
  const canVote = isMember && !readOnly() && chairId === null;
  list("[data-members]", room.members, (m) => el("li", { "data-member": m.member_id,
    "data-present": present.has(m.member_id) ? "yes" : "no", "data-chair": m.member_id === chairId ? "yes" : null },
  `${m.name} · ${m.specialty} · ${present.has(m.member_id) ? t("present") : t("absent")} `,
  m.member_id === chairId ? el("span", { class: "room-chair", "data-chair-badge": "" }, t("chair")) : null,
  counts.get(m.member_id) ? el("span", { class: "small muted" }, ` ${t("votes", { n: counts.get(m.member_id) })}`) : null,
  canVote ? el("button", { type: "button", class: "link-button", "data-vote-chair": m.member_id,
    onclick: () => act("vote_chair", { candidate_id: m.member_id }) },
  room.chair.my_vote === m.member_id ? `✓ ${t("vote_chair")}` : t("vote_chair")) : null), "nobody");
  $("[data-chair-votes]").textContent = room.chair.votes_cast !== undefined
    ? `${t("votes", { n: room.chair.votes_cast })} / ${room.chair.seats ?? ""}` : "";
  list("[data-presence]", room.presence, (p) => el("li", { "data-person": p.person_id, "data-role": p.role },
    p.name, p.role === "supervisor" ? ` · ${t("supervisor")}` : "", p.connections > 1 ? ` ×${p.connections}` : ""), "nobody");
}

function list(selector, items, render, empty) {
  const node = $(selector);
  node.replaceChildren(...(items.length ? items.map(render) : [el("li", { class: "muted" }, t(empty))]));
}

function renderClarifications() {
  list("[data-clarifications]", [...room.clarifications.values()], (c) => el("li", { "data-clarification": c.id,
    "data-status": c.status },
  el("strong", {}, bidLabel(c.bid_opening_id)), ` · ${t(`status_${c.status}`)}`,
  c.status === "open" && c.due_at ? ` · ${t("due", { at: when(c.due_at) })}` : "",
  el("br"), el("span", { class: "prewrap" }, c.question || ""),
  c.answer ? el("div", { class: "prewrap", "data-answer": "" }, el("strong", {}, `${t("answer")}: `), c.answer) : null),
  "no_clarifications");
}

function renderWarnings() {
  list("[data-warnings]", room.warnings, (w) => el("li", { "data-warning": key(w.member_id, w.bid_opening_id) },
    `${bidLabel(w.bid_opening_id)}: `, t("warning", { member: memberName(w.member_id), criterion: w.criterion,
      value: w.value, mean: w.others_mean, range: (w.range || []).join("–") })), "no_warnings");
}

function renderDisputes() {
  list("[data-disputes]", [...room.disputes.values()], (d) => {
    const votes = d.votes || [];
    const tally = { pass: votes.filter((v) => v.vote === "pass").length, fail: votes.filter((v) => v.vote === "fail").length };
    const voted = votes.some((v) => v.member_id === config.memberId);
    const node = el("li", { "data-dispute": d.id, "data-status": d.status },
      el("strong", {}, `${bidLabel(d.bid_opening_id)} · ${d.criterion}`), ` — ${d.reason || ""} · `,
      t("dispute_votes", tally), d.status === "decided" ? ` · ${t("decided", { outcome: t(d.outcome || "") })}` : "");
    if (isMember && !readOnly() && d.status === "voting" && !voted) {
      for (const v of ["pass", "fail"]) {
        node.append(" ", el("button", { type: "button", class: "link-button", "data-dispute-vote": v,
          onclick: () => act("vote_dispute", { dispute_id: d.id, vote: v }) }, t(`vote_${v}`)));
      }
    }
    return node;
  }, "no_disputes");
}

function renderSummary() {
  const s = room.state || {};
  $("[data-summary]").textContent = (s.summary && s.summary.text) || "—";
  const form = $("[data-summary-form]");
  if (!form) return;
  const chair = isMember && room.chair.chair_member_id === config.memberId;
  form.hidden = !chair || readOnly();
  if (chair && !form.elements.text.value && s.summary && s.summary.text) form.elements.text.value = s.summary.text;
}

function renderAll() {
  renderStatus();
  renderBids();
  const panel = $("[data-sheet-panel]");
  if (panel.contains(document.activeElement) && Number(panel.dataset.bid) === room.selected) {
    renderOthers(room.selected); // the member is typing in the sheet: keep the inputs (and the caret)
    sheets.renderState(room.selected);
  } else {
    renderSheet();
  }
  renderProgress();
  renderMembers();
  renderClarifications();
  renderWarnings();
  renderDisputes();
  renderSummary();
}

// --- live events -------------------------------------------------------------------------------------------

function onPresence(p) {
  room.presence = (p && p.present) || [];
  renderMembers();
}

socket.on("room.presence", onPresence);
let resyncTimer = null;
socket.on("room.progress", (p) => {
  room.progress.set(key(p.member_id, p.bid_opening_id), p);
  renderProgress();
  if (p.member_id === config.memberId) renderBids();
  if (!isMember && !resyncTimer) { // supervisors read the drafts too: fetch them, at most twice a second
    resyncTimer = setTimeout(() => { resyncTimer = null; resync(); }, 500);
  }
});
socket.on("room.sheet", (s) => {
  if (!s || s.member_id === undefined) return;
  room.sheets.set(key(s.member_id, s.bid_opening_id), s);
  if (s.bid_opening_id === room.selected) renderOthers(room.selected);
});
socket.on("room.clarification", (c) => {
  if (!c || !c.id) return;
  room.clarifications.set(c.id, { ...(room.clarifications.get(c.id) || {}), ...c });
  renderClarifications();
});
socket.on("room.dispute", (d) => {
  if (!d || !d.id) return;
  room.disputes.set(d.id, { ...(room.disputes.get(d.id) || {}), ...d });
  renderDisputes();
});
socket.on("room.summary", (s) => {
  if (room.state) room.state.summary = { text: s.text, at: s.at };
  renderSummary();
});
// events whose effects reach several parts of the page: the state again (drafts being typed are kept)
for (const name of ["room.members", "room.chair", "room.warning", "room.status"]) socket.on(name, resync);

// --- forms ---------------------------------------------------------------------------------------------------

function onSubmit(selector, handler) {
  const form = $(selector);
  if (form) form.addEventListener("submit", (event) => { event.preventDefault(); handler(form, new FormData(form)); });
}

onSubmit("[data-clarify-form]", (form, data) => act("ask_clarification", { bid_opening_id: Number(data.get("bid_opening_id")),
  question: data.get("question"), minutes: Number(data.get("minutes") || 30) }, (a) => { if (a.ok) form.elements.question.value = ""; }));
onSubmit("[data-dispute-form]", (form, data) => act("raise_dispute", { bid_opening_id: Number(data.get("bid_opening_id")),
  criterion: data.get("criterion"), reason: data.get("reason") }, (a) => { if (a.ok) form.elements.reason.value = ""; }));
onSubmit("[data-summary-form]", (_form, data) => act("write_summary", { text: data.get("text") }));
onSubmit("[data-suspend-form]", (form, data) => act("suspend", { reason: data.get("reason") }, (a) => { if (a.ok) form.reset(); }));
const resumeButton = $("[data-resume]");
if (resumeButton) resumeButton.addEventListener("click", () => act("resume"));
const completeButton = $("[data-complete]");
if (completeButton) completeButton.addEventListener("click", () => act("complete"));
