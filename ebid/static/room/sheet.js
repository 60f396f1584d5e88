// A member's own scoring sheets in the scoring room (评分表): the inputs per criterion (a range for scored
// items, pass/fail radios with a reason for a fail), the draft saved 600 ms after the last change with the
// revision it was based on, the "saved" indicator, and the submission per bid. room.js owns the state and
// the connection; ctx gives this module what it needs of them.

import { el } from "./dom.js";

export function sheetEditor(ctx) {
  const { room, config, t, act, readOnly, onSubmitted, onPassFail } = ctx;
  const $ = (selector) => document.querySelector(selector);

  function fromSheet(sheet) {
    return { values: { ...sheet.values }, comments: { ...sheet.comments }, revision: sheet.revision,
      submitted: sheet.submitted, dirty: false, saving: false, timer: null, error: null };
  }

  function draftOf(bidId) {
    if (!room.drafts.has(bidId)) {
      room.drafts.set(bidId, { values: {}, comments: {}, revision: null, submitted: false, dirty: false,
        saving: false, timer: null, error: null });
    }
    return room.drafts.get(bidId);
  }

  function take(sheet) { // the server's draft, unless this page has unsaved typing for it
    const draft = room.drafts.get(sheet.bid_opening_id);
    if (!draft || (!draft.dirty && !draft.saving)) room.drafts.set(sheet.bid_opening_id, fromSheet(sheet));
    else draft.revision = Math.max(draft.revision || 0, sheet.revision);
  }

  function localError(c, value) {
    if (c.kind !== "score" || value === "") return null;
    const n = Number(value);
    if (!/^\d+(\.\d{1,2})?$/.test(value) || n < Number(c.min) || n > Number(c.max)) {
      return t("range", { min: c.min, max: c.max });
    }
    return null;
  }

  function row(c, draft, disabled) {
    const value = draft.values[c.code] ?? "";
    const node = el("div", { class: "crit", "data-criterion": c.code, "data-kind": c.kind },
      el("span", {}, el("strong", {}, c.code), el("br"), el("span", { class: "grp" }, c.group)),
      el("span", {}, c.title));
    if (c.kind === "pass_fail") {
      const name = `pf-${room.selected}-${c.code}`;
      const radio = (v) => el("label", {}, el("input", { type: "radio", name, value: v, checked: value === v,
        disabled, "data-value": v, onchange: () => edit(c, v) }), ` ${t(v)} `);
      node.append(el("span", {}, radio("pass"), radio("fail")));
      if (value === "fail") {
        node.append(el("label", { class: "reason" }, el("input", { type: "text", "data-comment": c.code, disabled,
          placeholder: t("fail_reason"), value: draft.comments[c.code] ?? "",
          oninput: (e) => editComment(c, e.target.value) })));
      }
    } else {
      node.classList.toggle("invalid", Boolean(localError(c, value)));
      node.append(el("span", {}, el("input", { type: "text", inputmode: "decimal", "data-score": c.code, value,
        disabled, "aria-label": `${c.code} ${c.title}`, oninput: (e) => edit(c, e.target.value.trim()) }),
      " ", el("span", { class: "small muted" }, t("range", { min: c.min, max: c.max }))));
    }
    return node;
  }

  function render(box, actions, bidId) {
    const draft = draftOf(bidId);
    const disabled = readOnly() || draft.submitted;
    for (const c of room.criteria) box.append(row(c, draft, disabled));
    if (!disabled) {
      actions.append(el("button", { type: "button", "data-submit-sheet": bidId, onclick: () => submit(bidId) },
        t("submit")));
    }
    renderState(bidId);
  }

  function renderState(bidId) {
    if (bidId !== room.selected || !config.memberId) return;
    const draft = draftOf(bidId), box = $("[data-save-state]");
    box.dataset.revision = draft.revision ?? "";
    box.dataset.state = draft.error ? "error" : draft.saving || draft.dirty ? "saving"
      : draft.submitted ? "submitted" : "saved";
    box.textContent = draft.error ? t("save_failed", { reason: draft.error })
      : draft.saving || draft.dirty ? t("saving")
        : draft.submitted ? t("submitted") : draft.revision ? t("saved", { revision: draft.revision }) : "";
  }

  function edit(c, value) {
    const bidId = room.selected, draft = draftOf(bidId);
    const node = document.querySelector(`[data-sheet-panel] [data-criterion="${CSS.escape(c.code)}"]`);
    const problem = localError(c, value);
    if (node) node.classList.toggle("invalid", Boolean(problem));
    draft.values[c.code] = value; // "" clears the item on the server
    if (c.kind === "pass_fail") onPassFail(); // show or hide the reason field
    schedule(bidId, problem ? `${c.code}: ${problem}` : null);
  }

  function editComment(c, text) {
    draftOf(room.selected).comments[c.code] = text;
    schedule(room.selected, null);
  }

  function schedule(bidId, problem) {
    const draft = draftOf(bidId);
    draft.dirty = true;
    draft.error = problem;
    clearTimeout(draft.timer);
    draft.timer = setTimeout(() => save(bidId), config.autosaveMs || 600);
    renderState(bidId);
  }

  function validValues(draft) { // a value out of range stays in its input, marked, and is not sent
    const out = {};
    for (const c of room.criteria) {
      const v = draft.values[c.code];
      if (v !== undefined && !localError(c, v)) out[c.code] = v;
    }
    return out;
  }

  function save(bidId, then = null) {
    const draft = draftOf(bidId);
    if (draft.saving) { draft.again = true; draft.then = then || draft.then; return; } // after the one in flight
    draft.saving = true;
    draft.dirty = false;
    const problem = draft.error;
    act("save_sheet", { bid_opening_id: bidId, values: validValues(draft), comments: { ...draft.comments },
      revision: draft.revision }, (answer) => {
      draft.saving = false;
      if (answer.ok) {
        draft.revision = answer.sheet.revision;
        if (draft.error === problem) draft.error = problem && draft.dirty ? problem : null;
      } else {
        draft.error = answer.message;
        draft.dirty = true; // keep what was typed (a reload of the state does not overwrite it)
      }
      if (draft.again) {
        draft.again = false;
        const next = draft.then;
        draft.then = null;
        save(bidId, next);
        return;
      }
      renderState(bidId);
      if (then) then(answer);
    });
    renderState(bidId);
  }

  function submit(bidId) {
    const draft = draftOf(bidId);
    clearTimeout(draft.timer);
    const send = () => act("submit_sheet", { bid_opening_id: bidId }, (answer) => {
      if (!answer.ok) return;
      draft.submitted = true;
      draft.revision = answer.sheet.revision;
      onSubmitted(bidId);
    });
    if (draft.dirty || draft.saving) save(bidId, (answer) => { if (answer.ok) send(); });
    else send();
  }

  function retry() { // after a (re)join: send the drafts not saved yet, on the server's latest revision
    for (const [bidId, draft] of room.drafts) {
      if (draft.dirty && !draft.saving && !draft.submitted) save(bidId);
    }
  }

  return { draftOf, take, render, renderState, retry };
}
