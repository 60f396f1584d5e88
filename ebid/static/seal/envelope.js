// Sealed-bid envelopes, format version 1, suite 1 (docs/envelope.md): the browser twin of
// crypto/envelope.py's seal_stream. The plaintext never leaves this module except as AES-256-GCM
// STREAM segments; the content key is wrapped with HPKE for each recipient; the bidder signs
// SHA-256(header || segments) with ECDSA P-256 (raw r || s, low s).
//
// seal(source, options) reads `source` (a Blob or File) one segment at a time and returns the envelope
// as a Blob; memory stays at a few segments whatever the size (sealed segments are handed to the
// browser's blob storage every 32 MiB).
//
// options.random(n) -> Uint8Array supplies the content key, the nonce prefix and the HPKE ephemeral
// keys. It defaults to crypto.getRandomValues; a test passes a seeded generator to reproduce the
// published vectors. Never pass anything else in a page: a predictable value discloses the bid.

import { concat, u16, u32, u64, u8, utf8 } from "./bytes.js";
import { encode as canonical } from "./canonical.js";
import * as hpke from "./hpke.js";
import { keyId, signDigest } from "./p256.js";
import { Sha256, sha256 } from "./sha256.js";

export const MAGIC = utf8("EBIDENV");
export const VERSION = 1;
export const SUITE_P256 = 1;
export const KEY_MODE_SINGLE = 1;
export const KEY_MODE_SPLIT = 2;
export const ROLE_TENDER = 1;
export const ROLE_BIDDER = 2;
export const DEFAULT_SEGMENT_SIZE = 1 << 20;
export const MIN_SEGMENT_SIZE = 64;
export const MAX_SEGMENT_SIZE = 1 << 24;
export const TAG_SIZE = 16;
export const SIGNATURE_SIZE = 64;
const ENC_SIZE = 65;
const WRAPPED_SIZE = 48;
const FIXED_SIZE = 69;
const RECIPIENT_SIZE = 1 + 32 + 2 + ENC_SIZE + 2 + WRAPPED_SIZE;
const WRAP_INFO = utf8("ebid/envelope/v1 content-key");
const FLUSH_BYTES = 32 << 20;

export const defaultRandom = (n) => crypto.getRandomValues(new Uint8Array(n));

export function bidContext(tender, lot, bidder, bidVersion) {
  return canonical({ type: "ebid/bid-context/v1", tender, lot, bidder, bid_version: bidVersion });
}

export function wrapInfo(role) {
  return concat(WRAP_INFO, u8(role));
}

export function headerLength(contextLength, recipientCount) {
  return FIXED_SIZE + contextLength + 1 + recipientCount * RECIPIENT_SIZE;
}

export function segmentCount(plaintextLength, segmentSize) {
  return Math.max(1, Math.ceil(plaintextLength / segmentSize));
}

// Envelope bytes for a plaintext: what the upload will declare before sealing is finished.
export function envelopeSize(plaintextLength, segmentSize, contextLength, recipientCount) {
  return headerLength(contextLength, recipientCount) + plaintextLength
    + TAG_SIZE * segmentCount(plaintextLength, segmentSize) + SIGNATURE_SIZE;
}

export function segmentNonce(prefix, index, last) {
  return concat(prefix, u32(index), u8(last ? 1 : 0));
}

export function encodeCore({ keyMode, segmentSize, noncePrefix, plaintextLength, signerKeyId, context,
  recipientCount }) {
  const stated = plaintextLength !== null;
  return concat(MAGIC, u8(VERSION), u16(SUITE_P256), u32(headerLength(context.length, recipientCount)),
    u8(keyMode), u8(stated ? 1 : 0), u32(segmentSize), noncePrefix, u64(stated ? plaintextLength : 0),
    signerKeyId, u16(context.length), context);
}

function checkOptions({ recipients, keyMode, segmentSize, context }) {
  if (keyMode !== KEY_MODE_SINGLE && keyMode !== KEY_MODE_SPLIT) throw new Error(`unknown key mode ${keyMode}`);
  if (!(segmentSize >= MIN_SEGMENT_SIZE && segmentSize <= MAX_SEGMENT_SIZE)) {
    throw new Error(`segment size ${segmentSize} is outside ${MIN_SEGMENT_SIZE} .. ${MAX_SEGMENT_SIZE}`);
  }
  if (context.length > 0xffff) throw new Error("the context is longer than 65535 bytes");
  if (recipients.length < 1 || recipients.length > 16) throw new Error("an envelope has 1 .. 16 recipients");
  const roles = new Set(recipients.map((r) => r.role));
  for (const role of roles) {
    if (role !== ROLE_TENDER && role !== ROLE_BIDDER) throw new Error(`unknown recipient role ${role}`);
  }
  if (keyMode === KEY_MODE_SPLIT && !(roles.has(ROLE_TENDER) && roles.has(ROLE_BIDDER))) {
    throw new Error("split (double-envelope) mode needs a tender-key and a bidder-key recipient");
  }
}

function xor(a, b) {
  return a.map((x, i) => x ^ b[i]);
}

export async function seal(source, {
  signer, recipients, context = new Uint8Array(0), keyMode = KEY_MODE_SINGLE,
  segmentSize = DEFAULT_SEGMENT_SIZE, lengthStated = true, random = defaultRandom, onProgress = null,
}) {
  checkOptions({ recipients, keyMode, segmentSize, context });
  const total = source.size;
  const count = segmentCount(total, segmentSize);
  if (count > 0xffffffff) throw new Error("too many segments for one envelope");

  let contentKey, parts;
  if (keyMode === KEY_MODE_SINGLE) {
    contentKey = random(32);
    parts = { [ROLE_TENDER]: contentKey, [ROLE_BIDDER]: contentKey };
  } else {
    parts = { [ROLE_TENDER]: random(32), [ROLE_BIDDER]: random(32) };
    contentKey = xor(parts[ROLE_TENDER], parts[ROLE_BIDDER]);
  }
  const noncePrefix = random(7);
  const core = encodeCore({ keyMode, segmentSize, noncePrefix, plaintextLength: lengthStated ? total : null,
    signerKeyId: keyId(signer.point), context, recipientCount: recipients.length });
  const coreDigest = sha256(core);
  const entries = [];
  const seen = new Set();
  for (const r of recipients) {
    const id = keyId(r.point);
    const idHex = Array.from(id).join(",");
    if (seen.has(idHex)) throw new Error("the same recipient key is named twice");
    seen.add(idHex);
    const { enc, ciphertext } = await hpke.seal(r.point, parts[r.role], { info: wrapInfo(r.role), aad: coreDigest,
      random });
    entries.push(concat(u8(r.role), id, u16(enc.length), enc, u16(ciphertext.length), ciphertext));
  }
  const header = concat(core, u8(entries.length), ...entries);
  const headerDigest = sha256(header);

  const aesKey = await crypto.subtle.importKey("raw", contentKey, "AES-GCM", false, ["encrypt"]);
  const hasher = new Sha256().update(header);
  const blobs = [header];
  let pending = [], pendingBytes = 0;
  const sealSegment = async (index) => {
    const start = index * segmentSize;
    const end = Math.min(total, start + segmentSize);
    const plain = await source.slice(start, end).arrayBuffer();
    if (plain.byteLength !== end - start) throw new Error("the file changed while it was being sealed");
    const params = { name: "AES-GCM", iv: segmentNonce(noncePrefix, index, index === count - 1),
      additionalData: headerDigest, tagLength: 128 };
    return new Uint8Array(await crypto.subtle.encrypt(params, aesKey, plain));
  };
  let next = sealSegment(0);
  for (let i = 0; i < count; i++) {
    const sealed = await next;
    if (i + 1 < count) next = sealSegment(i + 1); // read and encrypt ahead while this one is hashed
    hasher.update(sealed);
    pending.push(sealed);
    pendingBytes += sealed.length;
    if (pendingBytes >= FLUSH_BYTES) {
      blobs.push(new Blob(pending));
      pending = [];
      pendingBytes = 0;
    }
    if (onProgress) onProgress(Math.min(total, (i + 1) * segmentSize), total);
  }
  const signedDigest = hasher.copy().digest();
  const signature = await signDigest(signer.scalar, signedDigest);
  const envelopeHash = hasher.update(signature).digest();
  const blob = new Blob([...blobs, ...pending, signature], { type: "application/octet-stream" });
  return { blob, size: blob.size, sha256: envelopeHash, signature, signedDigest, header, headerDigest, coreDigest,
    plaintextLength: total, segments: count };
}
