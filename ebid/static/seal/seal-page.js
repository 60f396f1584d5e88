// The sealing page (/tenders/<id>/lots/<lot_id>/seal): build or pick the bid, unlock the signing key,
// seal in this browser, upload the ciphertext in chunks (resumable), then check the signed receipt.
// Nothing typed or chosen here is sent to the server: the inputs belong to no form, and the only
// request bodies are the envelope's ciphertext chunks and its declared size and SHA-256.
//
// The template renders the configuration (data-config) and every sentence in the reader's language
// (data-strings); this script only fills in the %(name)s placeholders.

import { hex } from "./bytes.js";
import { buildBid, checkDocuments, checkOffer } from "./bid.js";
import * as envelope from "./envelope.js";
import { KeyFileError, kindOf, needsPassphrase, readKeyFile } from "./keyfile.js";
import { keyId, pointFromPem } from "./p256.js";
import { BUNDLE_TYPE, platformKeys, verifyBundle } from "./receipt.js";
import { Api, ApiError, pending, uploadEnvelope } from "./upload.js";
import { readEntry } from "./zip.js";

const root = document.getElementById("seal-app");
const config = JSON.parse(root.dataset.config);
const T = JSON.parse(root.dataset.strings);
const $ = (id) => document.getElementById(id);
const api = new Api({ csrfToken: config.csrfToken, organisationId: config.organisationId });
const pendingKey = pending.key(config.tenderId, config.lotId, config.organisationId);
const loadedAt = Date.now();

export function t(key, params = {}) {
  const text = T[key] || T.generic || key;
  return text.replace(/%\((\w+)\)s/g, (_m, name) => (name in params ? String(params[name]) : `%(${name})s`));
}

function size(bytes) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = bytes, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return unit ? `${value.toFixed(1)} ${units[unit]}` : `${bytes} B`;
}

class PageError extends Error {
  constructor(key, params = {}) {
    super(key);
    this.key = key;
    this.params = params;
  }
}

// --- the signing key ---------------------------------------------------------------------------------

let key = null; // {scalar, point, keyIdHex}
let keyText = null;
let unlocking = null; // the unlock in progress: {passphrase, promise}

function certificateFor(idHex) {
  return (config.certificates || []).find((c) => c.key_id === idHex) || null;
}

function showKey(message, ok) {
  const status = $("key-status");
  status.textContent = message; // the line keeps its height when empty: the page does not jump
  status.className = ok ? "key-status ok" : "key-status bad";
}

async function readKey(text, passphrase) {
  setStep("key", "active");
  setProgress(0, t("progress_key"));
  let loaded;
  try {
    loaded = await readKeyFile(text, passphrase, { onProgress: (f) => setProgress(f * 100, t("progress_key")) });
  } catch (err) {
    if (err instanceof KeyFileError) throw new PageError(`key_${err.code}`);
    throw err;
  }
  const idHex = hex(keyId(loaded.point));
  const cert = certificateFor(idHex);
  if (!cert) throw new PageError("key_not_certified", { id: idHex.slice(0, 16) });
  if (!cert.usable) throw new PageError("key_certificate_unusable", { id: idHex.slice(0, 16), reason: cert.reason });
  return { ...loaded, keyIdHex: idHex, label: cert.label };
}

// Unlock the chosen key file with the typed passphrase (once: a second caller shares the same run).
async function unlockKey() {
  if (key) return key;
  if (!keyText) throw new PageError("key_missing");
  const text = keyText, passphrase = $("key-passphrase").value;
  if (!unlocking || unlocking.text !== text || unlocking.passphrase !== passphrase) {
    unlocking = { text, passphrase, promise: readKey(text, passphrase) };
  }
  const run = unlocking;
  try {
    const loaded = await run.promise;
    if (keyText === text) {
      key = loaded;
      showKey(t("key_ok", { id: loaded.keyIdHex.slice(0, 16), certificate: loaded.label }), true);
    }
    return loaded;
  } catch (err) {
    if (unlocking === run) unlocking = null;
    showKey(message(err), false);
    throw err;
  } finally {
    $("progress-box").hidden = true;
    if (key) setStep("key", "done");
  }
}

async function onKeyFile() {
  key = null;
  keyText = null;
  showKey("", true);
  const file = $("key-file").files[0];
  if (!file) return;
  const text = await file.text();
  const kind = kindOf(text);
  $("passphrase-field").hidden = !needsPassphrase(kind);
  if (kind === null || kind === "certificate" || kind === "public") {
    showKey(t(kind === null ? "key_not_a_key" : "key_not_private"), false);
    return;
  }
  keyText = text;
  if (!needsPassphrase(kind)) unlockKey().catch(() => {});
  else showKey(t("key_needs_passphrase"), true);
}

// --- the bid -----------------------------------------------------------------------------------------

function clearFieldErrors() {
  root.querySelectorAll("[data-error-for]").forEach((el) => { el.textContent = ""; el.hidden = true; });
  root.querySelectorAll(".has-error").forEach((el) => el.classList.remove("has-error"));
}

function fieldError(field, text) {
  const el = root.querySelector(`[data-error-for="${field}"]`);
  if (el) {
    el.textContent = text;
    el.hidden = false;
    el.closest(".field")?.classList.add("has-error");
  }
}

function usingZip() {
  return $("source-zip").checked;
}

function checkInputs() {
  clearFieldErrors();
  if (usingZip()) {
    const file = $("bid-zip").files[0];
    if (!file) {
      fieldError("bid_zip", t("zip_missing"));
      throw new PageError("fix_fields");
    }
    return { zip: file };
  }
  const { offer, errors } = checkOffer({
    lot: config.lotCode, price: $("bid-price").value, durationDays: $("bid-duration").value,
    quality: $("bid-quality").value, managerName: $("bid-manager").value,
    managerCertificateNo: $("bid-manager-cert").value, alternatives: $("bid-alternatives").checked,
  });
  const docs = checkDocuments(Array.from($("bid-documents").files));
  for (const [field, code] of Object.entries(errors)) fieldError(field, t(`field_${code}`));
  if (docs.error) fieldError("documents", t(`field_${docs.error}`, { name: docs.name || "" }));
  if (Object.keys(errors).length || docs.error) throw new PageError("fix_fields");
  return { offer, documents: docs.named };
}

async function plaintextOf(input) {
  if (input.zip) {
    let body;
    try {
      const bytes = await readEntry(input.zip, "bid.json");
      if (bytes === null) throw new PageError("zip_not_bid");
      body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch (err) {
      if (err instanceof PageError) throw err;
      throw new PageError("zip_unreadable", { reason: err.message });
    }
    if (!body || body.type !== "ebid/bid/v1") throw new PageError("zip_not_bid");
    if (body.lot !== config.lotCode) throw new PageError("zip_other_lot", { built: body.lot, lot: config.lotCode });
    return input.zip;
  }
  setStep("bid", "active");
  const built = await buildBid(input.offer, input.documents, {
    onProgress: (done, total) => setProgress(total ? (done / total) * 100 : 100,
      t("progress_hash", { done: size(done), total: size(total) })),
  });
  return built.blob;
}

// --- progress and messages -----------------------------------------------------------------------------

function setStep(name, state) {
  const item = root.querySelector(`[data-step="${name}"]`);
  if (item) item.dataset.state = state;
}

function setProgress(percent, text) {
  $("progress").value = Math.max(0, Math.min(100, percent));
  $("progress-text").textContent = text;
  $("progress-box").hidden = false;
}

function message(err) {
  if (err instanceof PageError) return t(err.key, err.params);
  if (err instanceof ApiError) return err.message; // the server's sentence, in the reader's language
  if (err && err.code === "network") return t("network");
  if (err && err.code && T[`verify_${err.code}`]) return t("verify_failed", { reason: t(`verify_${err.code}`) });
  return t("generic", { reason: err && err.message ? err.message : String(err) });
}

function showError(err) {
  const box = $("seal-error");
  box.textContent = message(err);
  box.hidden = false;
  root.querySelectorAll('[data-step][data-state="active"]').forEach((el) => { el.dataset.state = "failed"; });
}

// A refused envelope (422), an unknown upload (404) or one too large (413) cannot be resumed: forget it.
// After anything else (network, expired session, a server restart) the envelope stays for a resume.
async function forgetIfFinal(err) {
  if ((err instanceof ApiError && [404, 413, 422].includes(err.status)) || (err && err.code === "other_envelope")) {
    await pending.remove(pendingKey);
  }
}

function busy(on) {
  root.querySelectorAll("input, button").forEach((el) => { el.disabled = on || el.dataset.alwaysDisabled === "1"; });
}

// --- sealing, upload, receipt --------------------------------------------------------------------------

async function recipientsFor(signer) {
  const recipients = [];
  if (config.recipients.tenderKey) {
    const point = await pointFromPem(config.openingKey.pem);
    if (hex(keyId(point)) !== config.openingKey.keyId) throw new PageError("opening_key_mismatch");
    recipients.push({ role: envelope.ROLE_TENDER, point });
  }
  if (config.recipients.bidderKey) recipients.push({ role: envelope.ROLE_BIDDER, point: signer.point });
  return recipients;
}

function deadlinePassed() {
  return config.deadlineMs !== null && config.serverNowMs + (Date.now() - loadedAt) >= config.deadlineMs;
}

function bundleOf(result, record) {
  return {
    type: BUNDLE_TYPE, server: window.location.origin, tender_id: config.tenderId, lot_id: config.lotId,
    organisation_id: config.organisationId, tender_code: config.tenderCode, lot_code: config.lotCode,
    bidder_uscc: config.bidder, bid_version: record.bidVersion,
    envelope: { path: record.fileName, sha256: record.sha256, size: record.size },
    receipt: result.receipt, log_entry: result.log_entry, inclusion_proof: result.inclusion_proof,
    consistency: result.consistency, bidder_commitment: result.bidder_commitment, bid: result.bid,
  };
}

function download(link, blob, name) {
  link.href = URL.createObjectURL(blob);
  link.download = name;
  link.hidden = false;
}

async function upload(record) {
  setStep("upload", "active");
  const result = await uploadEnvelope(api, {
    tenderId: config.tenderId, lotId: config.lotId, blob: record.blob, sha256: record.sha256,
    state: { uploadId: record.uploadId }, chunkSize: config.chunkSize,
    onSession: (session) => { record.uploadId = session.id; pending.save(record); },
    onProgress: (done, total) => setProgress((done / total) * 100,
      t("progress_upload", { done: size(done), total: size(total) })),
    onRetry: (attempt) => setProgress($("progress").value, t("retrying", { n: attempt })),
  });
  setStep("upload", "done");
  setStep("receipt", "active");
  const bundle = bundleOf(result, record);
  await pending.remove(pendingKey);
  showReceipt(bundle, record);
  const keys = await platformKeys(await api.get("/api/transparency/keys"));
  const checked = await verifyBundle(bundle, keys);
  setStep("receipt", "done");
  const status = $("receipt-verified");
  status.textContent = t("receipt_verified", { index: checked.receipt.log_index, size: checked.head.tree_size });
  status.className = "verified ok";
  $("progress-box").hidden = true;
}

function showReceipt(bundle, record) {
  const body = bundle.receipt.body;
  $("result").hidden = false;
  $("r-version").textContent = String(body.bid_version);
  $("r-sha256").textContent = body.envelope_sha256;
  $("r-size").textContent = size(body.envelope_size);
  $("r-received").textContent = new Date(body.received_at_ms).toLocaleString(config.locale,
    { timeZone: "Asia/Shanghai", hour12: false });
  $("r-log").textContent = t("receipt_log", { index: body.log_index, size: body.tree_head.body.tree_size });
  const json = new Blob([JSON.stringify(bundle, null, 2) + "\n"], { type: "application/json" });
  download($("download-receipt"), json, `${record.fileName}.receipt.json`);
  download($("download-envelope"), record.blob, record.fileName);
  $("receipt-verified").textContent = t("receipt_checking");
  $("receipt-verified").className = "verified";
  $("result").scrollIntoView({ behavior: "smooth", block: "start" });
}

async function sealAndSubmit() {
  $("seal-error").hidden = true;
  root.querySelectorAll("[data-step]").forEach((el) => { el.dataset.state = ""; });
  busy(true);
  try {
    if (deadlinePassed()) throw new PageError("deadline_passed");
    const input = checkInputs();
    const signer = await unlockKey();
    setStep("key", "done");
    const plain = await plaintextOf(input);
    setStep("bid", "done");
    const context = envelope.bidContext(config.tenderCode, config.lotCode, config.bidder, config.bidVersion);
    const recipients = await recipientsFor(signer);
    const expected = envelope.envelopeSize(plain.size, config.segmentSize, context.length, recipients.length);
    if (expected > config.maxEnvelopeBytes) {
      throw new PageError("too_large", { size: size(expected), limit: size(config.maxEnvelopeBytes) });
    }
    setStep("seal", "active");
    const sealed = await envelope.seal(plain, {
      signer, recipients, context, segmentSize: config.segmentSize,
      keyMode: config.keyMode === "split" ? envelope.KEY_MODE_SPLIT : envelope.KEY_MODE_SINGLE,
      onProgress: (done, total) => setProgress(total ? (done / total) * 100 : 100,
        t("progress_seal", { done: size(done), total: size(total) })),
    });
    setStep("seal", "done");
    const record = {
      key: pendingKey, tenderId: config.tenderId, lotId: config.lotId, organisationId: config.organisationId,
      bidVersion: config.bidVersion, blob: sealed.blob, size: sealed.size, sha256: hex(sealed.sha256),
      uploadId: null, sealedAt: Date.now(),
      fileName: `${config.tenderCode}-${config.lotCode}-v${config.bidVersion}.ebe`,
    };
    await pending.save(record);
    if (deadlinePassed()) throw new PageError("deadline_passed");
    await upload(record);
  } catch (err) {
    showError(err);
    await forgetIfFinal(err);
  } finally {
    busy(false);
  }
}

// --- an envelope sealed earlier and not completely uploaded ---------------------------------------------

async function offerResume() {
  const record = await pending.load(pendingKey);
  if (!record || record.bidVersion !== config.bidVersion) {
    if (record) await pending.remove(pendingKey); // sealed for a version that is no longer next
    return;
  }
  $("pending").hidden = false;
  $("pending-text").textContent = t("pending", { version: record.bidVersion, size: size(record.size),
    at: new Date(record.sealedAt).toLocaleString(config.locale, { timeZone: "Asia/Shanghai", hour12: false }) });
  $("resume-button").onclick = async () => {
    $("pending").hidden = true;
    $("seal-error").hidden = true;
    busy(true);
    try {
      await upload(record);
    } catch (err) {
      showError(err);
      await forgetIfFinal(err);
    } finally {
      busy(false);
    }
  };
  $("discard-button").onclick = async () => {
    await pending.remove(pendingKey);
    $("pending").hidden = true;
  };
}

function start() {
  const swap = () => {
    $("form-fields").hidden = usingZip();
    $("zip-fields").hidden = !usingZip();
  };
  $("source-form").addEventListener("change", swap);
  $("source-zip").addEventListener("change", swap);
  swap();
  $("key-file").addEventListener("change", () => onKeyFile().catch((err) => showKey(message(err), false)));
  $("key-passphrase").addEventListener("input", () => { key = null; });
  $("key-passphrase").addEventListener("change", () => {
    key = null;
    if (keyText && $("key-passphrase").value) unlockKey().catch(() => {});
  });
  $("seal-button").addEventListener("click", () => sealAndSubmit());
  $("seal-button").disabled = false;
  $("js-missing").hidden = true;
  if (!globalThis.crypto || !crypto.subtle) {
    showError(new PageError("no_webcrypto"));
    busy(true);
    return;
  }
  offerResume();
}

start();
