// HPKE (RFC 9180) base mode with DHKEM(P-256, HKDF-SHA256), HKDF-SHA256 and AES-256-GCM: the key wrap
// of ebid's envelopes (docs/envelope.md §5.1), as crypto/hpke.py does it. ECDH, HMAC and AES-GCM are
// WebCrypto's; the ephemeral key is DeriveKeyPair(32 random bytes) (RFC 9180 §7.1.3), like the Python
// sealer, so that a test can fix the random bytes and reproduce the published vectors.

import { concat, toBigInt, u16, utf8 } from "./bytes.js";
import { N, ecdh, pointOf } from "./p256.js";

export const KEM_ID = 0x0010;
export const KDF_ID = 0x0001;
export const AEAD_AES_256_GCM = 0x0002;
const KEM_SUITE = concat(utf8("KEM"), u16(KEM_ID));
const HPKE_SUITE = concat(utf8("HPKE"), u16(KEM_ID), u16(KDF_ID), u16(AEAD_AES_256_GCM));
const VERSION = utf8("HPKE-v1");
const ZERO_SALT = new Uint8Array(32); // RFC 5869: an absent salt is HashLen zero bytes

async function hmac(key, data) {
  // WebCrypto refuses an empty HMAC key; HMAC pads short keys with zeros, so 32 zeros is the same key.
  const k = await crypto.subtle.importKey("raw", key.length ? key : ZERO_SALT, { name: "HMAC", hash: "SHA-256" },
    false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, data));
}

export async function labeledExtract(salt, suite, label, ikm) {
  return hmac(salt, concat(VERSION, suite, utf8(label), ikm));
}

export async function labeledExpand(prk, suite, label, info, length) {
  const labeled = concat(u16(length), VERSION, suite, utf8(label), info);
  let out = new Uint8Array(0), block = new Uint8Array(0);
  for (let counter = 1; out.length < length; counter++) {
    block = await hmac(prk, concat(block, labeled, Uint8Array.of(counter)));
    out = concat(out, block);
  }
  return out.slice(0, length);
}

// RFC 9180 §7.1.3 DeriveKeyPair for P-256: returns {scalar, point}.
export async function deriveKeyPair(ikm) {
  if (ikm.length < 32) throw new Error("DeriveKeyPair needs at least 32 bytes");
  const prk = await labeledExtract(new Uint8Array(0), KEM_SUITE, "dkp_prk", ikm);
  for (let counter = 0; counter < 256; counter++) {
    const candidate = await labeledExpand(prk, KEM_SUITE, "candidate", Uint8Array.of(counter), 32);
    const value = toBigInt(candidate);
    if (value > 0n && value < N) return { scalar: candidate, point: await pointOf(candidate) };
  }
  throw new Error("DeriveKeyPair found no valid scalar");
}

async function extractAndExpand(dh, kemContext) {
  const prk = await labeledExtract(new Uint8Array(0), KEM_SUITE, "eae_prk", dh);
  return labeledExpand(prk, KEM_SUITE, "shared_secret", kemContext, 32);
}

// Encap(pkR) with the ephemeral key DeriveKeyPair(ikmE): {sharedSecret, enc}.
export async function encap(recipientPoint, ikmE) {
  const ephemeral = await deriveKeyPair(ikmE);
  const dh = await ecdh(ephemeral.scalar, recipientPoint);
  const enc = ephemeral.point;
  return { sharedSecret: await extractAndExpand(dh, concat(enc, recipientPoint)), enc };
}

export async function decap(enc, scalar) {
  const dh = await ecdh(scalar, enc);
  return extractAndExpand(dh, concat(enc, await pointOf(scalar)));
}

export async function keySchedule(sharedSecret, info) {
  const pskIdHash = await labeledExtract(new Uint8Array(0), HPKE_SUITE, "psk_id_hash", new Uint8Array(0));
  const infoHash = await labeledExtract(new Uint8Array(0), HPKE_SUITE, "info_hash", info);
  const context = concat(Uint8Array.of(0), pskIdHash, infoHash);
  const secret = await labeledExtract(sharedSecret, HPKE_SUITE, "secret", new Uint8Array(0));
  return {
    key: await labeledExpand(secret, HPKE_SUITE, "key", context, 32),
    baseNonce: await labeledExpand(secret, HPKE_SUITE, "base_nonce", context, 12),
    exporterSecret: await labeledExpand(secret, HPKE_SUITE, "exp", context, 32),
    context,
  };
}

async function aesGcm(op, key, nonce, aad, data) {
  const k = await crypto.subtle.importKey("raw", key, "AES-GCM", false, [op]);
  const params = { name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: 128 };
  return new Uint8Array(await crypto.subtle[op](params, k, data));
}

// SealBase(pkR, info, aad, pt) for one message (sequence number 0): {enc, ciphertext}.
export async function seal(recipientPoint, plaintext, { info, aad, random }) {
  const { sharedSecret, enc } = await encap(recipientPoint, random(32));
  const { key, baseNonce } = await keySchedule(sharedSecret, info);
  return { enc, ciphertext: await aesGcm("encrypt", key, baseNonce, aad, plaintext) };
}

// OpenBase for one message; throws when anything does not match.
export async function open(scalar, enc, ciphertext, { info, aad }) {
  const { key, baseNonce } = await keySchedule(await decap(enc, scalar), info);
  return aesGcm("decrypt", key, baseNonce, aad, ciphertext);
}
