// The bid file (投标文件) built in the browser: bid.json with the opening-form data (开标一览表) of one
// lot and the documents, in the format `ebid client build` writes and reads (ebid/client/bidzip.py):
//
//   {"alternatives": false, "currency": "CNY", "documents": [{"name", "path": "documents/<name>", "size",
//    "sha256"}], "duration_days": 365, "lot": "1", "price": "12345678.00",
//    "project_manager": {"certificate_no", "name"}, "quality": "合格", "type": "ebid/bid/v1"}
//
// bid.json is sorted-key JSON indented by 2 with a final newline; prices are strings with two decimals.
// Checks return error codes per field; the page turns them into sentences in the reader's language.

import { hex, utf8 } from "./bytes.js";
import { buildZip, digestBlob } from "./zip.js";

export const BID_TYPE = "ebid/bid/v1";
const PRICE = /^[0-9]+(\.[0-9]{1,2})?$/;
const CONTROL = /[\x00-\x1f\x7f]/;
const MAX_TEXT = 100;
const MAX_NAME = 200;
const MAX_DOCUMENTS = 500;
const MAX_DURATION_DAYS = 3650;

function text(value) {
  return String(value || "").normalize("NFC").trim();
}

function checkText(value, field, errors) {
  const clean = text(value);
  if (!clean) errors[field] = "required";
  else if (clean.length > MAX_TEXT || CONTROL.test(clean)) errors[field] = "one_line";
  return clean;
}

export function normalisePrice(value) {
  const clean = text(value);
  if (/[,，]/.test(clean)) return { error: "price_separators" };
  if (!PRICE.test(clean)) return { error: "price_format" };
  const [whole, fraction = ""] = clean.split(".");
  const digits = whole.replace(/^0+/, "") || "0";
  if (digits.length > 16) return { error: "price_digits" };
  if (/^0*$/.test(whole + fraction)) return { error: "price_positive" };
  return { value: `${digits}.${fraction.padEnd(2, "0")}` };
}

// Check the opening-form data; returns {offer, errors} (errors: field -> code; empty when all is well).
export function checkOffer({ lot, price, durationDays, quality, managerName, managerCertificateNo,
  alternatives = false }) {
  const errors = {};
  const offer = { lot: checkText(lot, "lot", errors), alternatives: Boolean(alternatives) };
  const p = normalisePrice(price);
  if (p.error) errors.price = p.error;
  offer.price = p.value;
  const days = Number(String(durationDays || "").trim());
  if (!Number.isInteger(days) || days < 1 || days > MAX_DURATION_DAYS) errors.duration_days = "duration";
  offer.durationDays = days;
  offer.quality = checkText(quality, "quality", errors);
  offer.managerName = checkText(managerName, "project_manager.name", errors);
  offer.managerCertificateNo = checkText(managerCertificateNo, "project_manager.certificate_no", errors);
  return { offer, errors };
}

// A document's name inside the ZIP, or null when it cannot be used (folders, control characters...).
export function documentName(name) {
  const clean = text(name);
  if (!clean || clean === "." || clean === ".." || clean.startsWith(".") || /[/\\]/.test(clean)
    || CONTROL.test(clean) || clean.length > MAX_NAME) return null;
  return clean;
}

// Check the chosen files; returns {named: [{name, file}] sorted, error: code or null, name}.
export function checkDocuments(files) {
  if (files.length > MAX_DOCUMENTS) return { named: [], error: "too_many_documents" };
  const named = [], seen = new Set();
  for (const file of files) {
    const name = documentName(file.name);
    if (name === null) return { named: [], error: "document_name", name: file.name };
    if (seen.has(name.toLowerCase())) return { named: [], error: "document_twice", name };
    seen.add(name.toLowerCase());
    named.push({ name, file });
  }
  named.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { named, error: null };
}

function sorted(value) {
  if (Array.isArray(value)) return value.map(sorted);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sorted(value[k])]));
  }
  return value;
}

export function bidJson(offer, documents) {
  const body = {
    type: BID_TYPE, lot: offer.lot, price: offer.price, currency: "CNY", duration_days: offer.durationDays,
    quality: offer.quality, project_manager: { name: offer.managerName, certificate_no: offer.managerCertificateNo },
    alternatives: offer.alternatives,
    documents: documents.map((d) => ({ name: d.name, path: `documents/${d.name}`, size: d.size, sha256: d.sha256 })),
  };
  return utf8(JSON.stringify(sorted(body), null, 2) + "\n");
}

// Hash the documents and build the bid ZIP; onProgress(bytesDone, bytesTotal) while hashing.
export async function buildBid(offer, named, { onProgress = null } = {}) {
  const total = named.reduce((n, d) => n + d.file.size, 0);
  let before = 0;
  const entries = [], listed = [];
  for (const { name, file } of named) {
    const digest = await digestBlob(file, { onProgress: onProgress && ((done) => onProgress(before + done, total)) });
    before += file.size;
    listed.push({ name, size: digest.size, sha256: hex(digest.sha256) });
    entries.push({ name: `documents/${name}`, data: file, crc32: digest.crc32, size: digest.size });
  }
  const json = new Blob([bidJson(offer, listed)]);
  const jsonDigest = await digestBlob(json);
  entries.push({ name: "bid.json", data: json, crc32: jsonDigest.crc32, size: json.size });
  return { blob: buildZip(entries), documents: listed };
}
