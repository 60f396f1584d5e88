// Checking what the platform signed, in the browser: receipts (投标回执), tree heads and the Merkle
// proofs of the transparency log (docs/envelope.md §9-§10), as crypto/receipt.py, crypto/merkle.py and
// `ebid client verify-receipt` check them. Failures throw VerifyError with a code the page translates.

import { b64decode, concat, equal, fromHex, hex, utf8 } from "./bytes.js";
import * as canonical from "./canonical.js";
import { keyId, pointFromPem, verify } from "./p256.js";
import { sha256 } from "./sha256.js";

export const RECEIPT_TYPE = "ebid/receipt/v1";
export const TREE_HEAD_TYPE = "ebid/tree-head/v1";
export const BUNDLE_TYPE = "ebid/client-receipt/v1";
const COMMITMENT_DOMAIN = utf8("ebid/bidder-commitment/v1\n");

export class VerifyError extends Error {
  constructor(code, detail = "") {
    super(detail ? `${code}: ${detail}` : code);
    this.code = code;
    this.detail = detail;
  }
}

// --- Merkle tree (RFC 9162 §2.1) ------------------------------------------------------------------------

export const leafHash = (entry) => sha256(concat(Uint8Array.of(0), entry));
export const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

function hashes(proof) {
  return proof.map((p) => {
    const h = typeof p === "string" ? fromHex(p) : p;
    if (h.length !== 32) throw new VerifyError("proof_malformed");
    return h;
  });
}

export function rootFromInclusion(leaf, index, size, proof) {
  if (!(index >= 0 && index < size)) throw new VerifyError("inclusion", "index outside the tree");
  let fn = index, sn = size - 1, r = leaf;
  for (const p of hashes(proof)) {
    if (sn === 0) throw new VerifyError("inclusion", "proof too long");
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn !== 0 && fn % 2 === 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new VerifyError("inclusion", "proof too short");
  return r;
}

export function verifyInclusion(leaf, index, size, proof, root) {
  if (!equal(rootFromInclusion(leaf, index, size, proof), root)) throw new VerifyError("inclusion");
}

export function verifyConsistency(oldSize, newSize, oldRoot, newRoot, proofIn) {
  let proof = hashes(proofIn);
  if (!(oldSize >= 0 && oldSize <= newSize)) throw new VerifyError("consistency", "the log shrank");
  if (oldSize === newSize) {
    if (proof.length || !equal(oldRoot, newRoot)) throw new VerifyError("consistency");
    return;
  }
  if (oldSize === 0) {
    if (proof.length || !equal(oldRoot, sha256(new Uint8Array(0)))) throw new VerifyError("consistency");
    return;
  }
  if (!proof.length) throw new VerifyError("consistency", "empty proof");
  if ((oldSize & (oldSize - 1)) === 0) proof = [oldRoot, ...proof];
  let fn = oldSize - 1, sn = newSize - 1;
  while (fn % 2 === 1) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
  let fr = proof[0], sr = proof[0];
  for (const c of proof.slice(1)) {
    if (sn === 0) throw new VerifyError("consistency", "proof too long");
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn !== 0 && fn % 2 === 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0 || !equal(fr, oldRoot) || !equal(sr, newRoot)) throw new VerifyError("consistency");
}

// --- signed documents ----------------------------------------------------------------------------------

// The platform's keys from GET /api/transparency/keys: {log: {point, keyId}, receipt: {point, keyId}}.
export async function platformKeys(published) {
  const out = {};
  for (const item of published || []) {
    if (item.use !== "log" && item.use !== "receipt") continue;
    const point = await pointFromPem(item.public_key_pem);
    if (hex(keyId(point)) !== item.key_id) throw new VerifyError("key_mismatch");
    out[item.use] = { point, keyId: item.key_id };
  }
  if (!out.log || !out.receipt) throw new VerifyError("keys_missing");
  return out;
}

export async function verifyDocument(doc, key, expectedType, code) {
  if (!doc || typeof doc !== "object" || !doc.body || doc.body.type !== expectedType) {
    throw new VerifyError("type", expectedType);
  }
  if (doc.key_id !== key.keyId) throw new VerifyError(code, "signed by another key");
  const ok = await verify(key.point, fromHex(doc.signature), canonical.encode(doc.body));
  if (!ok) throw new VerifyError(code);
  return doc.body;
}

export function commitmentOf(saltHex, uscc) {
  return hex(sha256(concat(COMMITMENT_DOMAIN, fromHex(saltHex), utf8(uscc))));
}

// crypto.receipt.verify_receipt plus the bundle's own claims (what `ebid client verify-receipt` checks
// offline). Returns {receipt, head, entry}.
export async function verifyBundle(bundle, keys) {
  if (!bundle || bundle.type !== BUNDLE_TYPE) throw new VerifyError("not_a_bundle");
  const receipt = await verifyDocument(bundle.receipt, keys.receipt, RECEIPT_TYPE, "receipt_signature");
  const head = await verifyDocument(receipt.tree_head, keys.log, TREE_HEAD_TYPE, "head_signature");
  if (!(receipt.log_index < head.tree_size)) throw new VerifyError("index_outside");
  if (head.timestamp_ms < receipt.received_at_ms) throw new VerifyError("head_older");
  if (receipt.envelope_sha256 !== bundle.envelope.sha256) throw new VerifyError("envelope_hash");
  if (receipt.envelope_size !== bundle.envelope.size) throw new VerifyError("envelope_size");
  const entryBytes = b64decode(bundle.log_entry);
  let entry;
  try {
    entry = canonical.decode(entryBytes);
  } catch (err) {
    throw new VerifyError("entry_mismatch", err.message);
  }
  const fields = ["tender", "lot", "bidder", "bid_version", "envelope_sha256", "envelope_size"];
  if (!["submission", "replacement"].includes(entry.kind) || entry.type !== "ebid/log-entry/v1"
    || fields.some((f) => entry[f] !== receipt[f]) || entry.at_ms !== receipt.received_at_ms) {
    throw new VerifyError("entry_mismatch");
  }
  verifyInclusion(leafHash(entryBytes), receipt.log_index, head.tree_size, bundle.inclusion_proof,
    fromHex(head.root_hash));
  if (receipt.tender !== bundle.tender_code || receipt.lot !== bundle.lot_code) throw new VerifyError("other_lot");
  const c = bundle.bidder_commitment;
  if (!c || c.uscc !== bundle.bidder_uscc || commitmentOf(c.salt, bundle.bidder_uscc) !== receipt.bidder) {
    throw new VerifyError("commitment");
  }
  if (bundle.bid_version != null && receipt.bid_version !== bundle.bid_version) throw new VerifyError("version");
  return { receipt, head, entryBytes };
}

// Fresh proofs from the server (`fetchJson(path, query)`): the entry is still in the receipt's tree head,
// and after the deadline the final head contains it and its opening entry lists the bid. Returns
// {final: bool, listed: "this" | "other" | "none" | null}.
export async function verifyOnline(bundle, checked, keys, fetchJson) {
  const { receipt, head, entryBytes } = checked;
  const org = bundle.organisation_id;
  const inclusion = async (index, size, root, leaf) => {
    const answer = await fetchJson(`/api/tenders/${bundle.tender_id}/log/inclusion`,
      { index, size, organisation_id: org });
    if (leaf && answer.leaf_hash !== hex(leaf)) throw new VerifyError("other_entry");
    verifyInclusion(leaf || fromHex(answer.leaf_hash), index, size, answer.proof, root);
  };
  await inclusion(receipt.log_index, head.tree_size, fromHex(head.root_hash), leafHash(entryBytes));
  let heads;
  try {
    heads = await fetchJson(`/api/tenders/${bundle.tender_id}/log/head`, {});
  } catch (err) {
    if (err.code === "log_not_public") return { final: false, listed: null };
    throw err;
  }
  if (!heads || !heads.final) return { final: false, listed: null };
  const final = await verifyDocument(heads.final, keys.log, TREE_HEAD_TYPE, "head_signature");
  const consistency = await fetchJson(`/api/tenders/${bundle.tender_id}/log/consistency`,
    { first: head.tree_size, second: final.tree_size, organisation_id: org });
  verifyConsistency(head.tree_size, final.tree_size, fromHex(head.root_hash), fromHex(final.root_hash),
    consistency.proof);
  await inclusion(receipt.log_index, final.tree_size, fromHex(final.root_hash), leafHash(entryBytes));
  const last = final.tree_size - 1;
  const rows = await fetchJson(`/api/tenders/${bundle.tender_id}/log/entries`, { start: last, end: final.tree_size });
  if (!rows.length) throw new VerifyError("opening_missing");
  const openingBytes = b64decode(rows[0].entry);
  await inclusion(last, final.tree_size, fromHex(final.root_hash), leafHash(openingBytes));
  const opening = canonical.decode(openingBytes);
  if (opening.kind !== "opening" || opening.tree_size !== last) throw new VerifyError("opening_missing");
  const mine = opening.bids.filter((b) => b.lot === receipt.lot && b.bidder === receipt.bidder);
  if (mine.some((b) => b.bid_version === receipt.bid_version && b.envelope_sha256 !== receipt.envelope_sha256)) {
    throw new VerifyError("opening_other_envelope");
  }
  const listed = mine.some((b) => b.bid_version === receipt.bid_version) ? "this" : mine.length ? "other" : "none";
  return { final: true, listed };
}
