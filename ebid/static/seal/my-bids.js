// The my-bids page: check every receipt in the browser (the platform's signatures, the log entry, fresh
// inclusion proofs, and after the deadline the final tree head and the set of bids to open), and
// withdraw a current bid. Sentences come from the template (data-strings).

import { platformKeys, verifyBundle, verifyOnline } from "./receipt.js";
import { Api, ApiError } from "./upload.js";

const root = document.getElementById("bids-app");
const config = JSON.parse(root.dataset.config);
const T = JSON.parse(root.dataset.strings);
const api = new Api({ csrfToken: config.csrfToken, organisationId: config.organisationId });

function t(key, params = {}) {
  const text = T[key] || T.generic || key;
  return text.replace(/%\((\w+)\)s/g, (_m, name) => (name in params ? String(params[name]) : `%(${name})s`));
}

function show(cell, text, state) {
  cell.textContent = text;
  cell.className = `verified ${state}`;
  cell.dataset.browserCheck = state;
}

function failure(err) {
  if (err instanceof ApiError) return err.message;
  if (err && err.code === "network") return t("network");
  if (err && err.code && T[`verify_${err.code}`]) return t("verify_failed", { reason: t(`verify_${err.code}`) });
  return t("generic", { reason: err && err.message ? err.message : String(err) });
}

async function checkRow(row, keys) {
  const cell = row.querySelector("[data-browser-check]");
  show(cell, t("checking"), "");
  try {
    const response = await fetch(row.dataset.receiptUrl, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const bundle = await response.json();
    const checked = await verifyBundle(bundle, await keys);
    const online = await verifyOnline(bundle, checked, await keys, (path, query) => api.call("GET", path, { query }));
    if (!online.final) {
      show(cell, t("verified_open", { index: checked.receipt.log_index, size: checked.head.tree_size }), "ok");
    } else {
      show(cell, t(`verified_${online.listed}`), "ok");
    }
  } catch (err) {
    show(cell, failure(err), "bad");
  }
}

async function withdraw(button) {
  if (!window.confirm(t("withdraw_confirm"))) return;
  button.disabled = true;
  try {
    await api.call("POST", new URL(button.dataset.withdraw, window.location.origin).pathname);
    window.location.reload();
  } catch (err) {
    button.disabled = false;
    window.alert(failure(err));
  }
}

const keys = api.get("/api/transparency/keys").then(platformKeys);
keys.catch(() => {});
for (const row of root.querySelectorAll("tr[data-bid]")) checkRow(row, keys);
for (const button of root.querySelectorAll("[data-withdraw]")) button.addEventListener("click", () => withdraw(button));
