// Canonical JSON (docs/envelope.md §9.1): sorted ASCII keys, no whitespace, integers only, minimal
// escapes; the byte form of bid contexts, log entries, tree heads and receipts.

import { utf8 } from "./bytes.js";

function text(value, path) {
  if (value === null) return "null";
  if (value === true || value === false) return String(value);
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new Error(`${path}: only integers within ±(2^53 − 1) are allowed`);
    return String(value);
  }
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return "[" + value.map((v, i) => text(v, `${path}[${i}]`)).join(",") + "]";
  if (typeof value === "object") {
    const keys = Object.keys(value);
    for (const key of keys) {
      if (/[^\x00-\x7f]/.test(key)) throw new Error(`${path}: object keys must be ASCII`);
    }
    keys.sort();
    return "{" + keys.map((k) => JSON.stringify(k) + ":" + text(value[k], `${path}.${k}`)).join(",") + "}";
  }
  throw new Error(`${path}: ${typeof value} values cannot be encoded`);
}

export function encode(value) {
  return utf8(text(value, "$"));
}

// Decode bytes that must be canonical (re-encoding gives the same bytes), as crypto/canonical.py does.
export function decode(bytes) {
  const value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  const again = encode(value);
  if (again.length !== bytes.length || again.some((b, i) => b !== bytes[i])) {
    throw new Error("the document is not in canonical form");
  }
  return value;
}
