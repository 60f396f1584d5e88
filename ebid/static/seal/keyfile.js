// Private key files, read in the browser (the key never leaves it):
//
//   -----BEGIN EBID ENCRYPTED PRIVATE KEY-----   what `ebid client keygen` writes (crypto/keys.py):
//        "EBIDKEY" v1, scrypt (RFC 7914) + AES-256-GCM over an unencrypted PKCS#8 DER key;
//   -----BEGIN ENCRYPTED PRIVATE KEY-----        PKCS#8 with PBES2 (PBKDF2-HMAC-SHA1/SHA256 or scrypt,
//        AES-128/256-CBC), as `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes it;
//   -----BEGIN PRIVATE KEY-----                  unencrypted PKCS#8;
//   -----BEGIN EC PRIVATE KEY-----               unencrypted SEC 1 (RFC 5915).
//
// Only EC P-256 keys are accepted. readKeyFile returns {scalar, point}.

import { b64decode, equal } from "./bytes.js";
import { pointOf } from "./p256.js";
import { scrypt } from "./scrypt.js";

export class KeyFileError extends Error {
  constructor(code, detail = "") {
    super(detail || code);
    this.code = code;
  }
}

const ARMOUR = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/;
const OID = {
  ecPublicKey: "2a8648ce3d0201",
  prime256v1: "2a8648ce3d030107",
  pbes2: "2a864886f70d01050d",
  pbkdf2: "2a864886f70d01050c",
  scrypt: "2b06010401da47040b",
  hmacWithSHA1: "2a864886f70d0207",
  hmacWithSHA256: "2a864886f70d0209",
  aes128cbc: "608648016503040102",
  aes256cbc: "60864801650304012a",
};

export function armour(text) {
  const match = ARMOUR.exec(text);
  if (!match) return null;
  return { label: match[1], body: match[2].replace(/\s+/g, "") };
}

// What a file holds, before asking for a passphrase: "ebid", "pkcs8-encrypted", "pkcs8", "sec1",
// "certificate", "public", or null.
export function kindOf(text) {
  const found = armour(text);
  if (!found) return null;
  return {
    "EBID ENCRYPTED PRIVATE KEY": "ebid", "ENCRYPTED PRIVATE KEY": "pkcs8-encrypted", "PRIVATE KEY": "pkcs8",
    "EC PRIVATE KEY": "sec1", "CERTIFICATE": "certificate", "PUBLIC KEY": "public",
  }[found.label] || null;
}

export function needsPassphrase(kind) {
  return kind === "ebid" || kind === "pkcs8-encrypted";
}

// --- a small DER reader ------------------------------------------------------------------------------

function node(bytes, pos) {
  if (pos + 2 > bytes.length) throw new KeyFileError("damaged");
  const tag = bytes[pos];
  let len = bytes[pos + 1], head = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 3 || pos + 2 + n > bytes.length) throw new KeyFileError("damaged");
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | bytes[pos + 2 + i];
    head += n;
  }
  const start = pos + head, end = start + len;
  if (end > bytes.length) throw new KeyFileError("damaged");
  return { tag, start, end, value: bytes.subarray(start, end), next: end };
}

function children(bytes, parent) {
  const out = [];
  for (let pos = parent.start; pos < parent.end;) {
    const child = node(bytes, pos);
    out.push(child);
    pos = child.next;
  }
  return out;
}

const oidHex = (n) => Array.from(n.value, (b) => b.toString(16).padStart(2, "0")).join("");

function integer(n) {
  let value = 0;
  for (const b of n.value) value = value * 256 + b;
  return value;
}

// --- key structures ----------------------------------------------------------------------------------

async function fromEcPrivateKey(der, curveKnown) {
  const top = node(der, 0);
  const [version, secret, ...rest] = children(der, top);
  if (!version || version.tag !== 0x02 || integer(version) !== 1 || !secret || secret.tag !== 0x04) {
    throw new KeyFileError("damaged");
  }
  let curve = curveKnown, embedded = null;
  for (const field of rest) {
    if (field.tag === 0xa0) {
      if (oidHex(children(der, field)[0]) !== OID.prime256v1) throw new KeyFileError("unsupported_curve");
      curve = true;
    }
    if (field.tag === 0xa1) embedded = children(der, field)[0].value.subarray(1); // BIT STRING: skip unused-bits byte
  }
  if (curve !== true) throw new KeyFileError("unsupported_curve");
  if (secret.value.length > 32) throw new KeyFileError("unsupported_curve");
  const scalar = new Uint8Array(32);
  scalar.set(secret.value, 32 - secret.value.length);
  const point = await pointOf(scalar).catch(() => { throw new KeyFileError("damaged"); });
  if (embedded && embedded.length === 65 && !equal(embedded, point)) throw new KeyFileError("damaged");
  return { scalar, point };
}

async function fromPkcs8(der) {
  const top = node(der, 0);
  const [version, algorithm, secret] = children(der, top);
  if (!version || version.tag !== 0x02 || !algorithm || algorithm.tag !== 0x30 || !secret || secret.tag !== 0x04) {
    throw new KeyFileError("damaged");
  }
  const [algOid, params] = children(der, algorithm);
  if (oidHex(algOid) !== OID.ecPublicKey) throw new KeyFileError("unsupported_curve");
  const curve = params && params.tag === 0x06 && oidHex(params) === OID.prime256v1;
  if (!curve) throw new KeyFileError("unsupported_curve");
  return fromEcPrivateKey(secret.value, true);
}

async function aesCbcDecrypt(key, iv, data) {
  const k = await crypto.subtle.importKey("raw", key, "AES-CBC", false, ["decrypt"]);
  try {
    return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-CBC", iv }, k, data));
  } catch (err) {
    throw new KeyFileError("wrong_passphrase");
  }
}

async function pbkdf2(password, salt, iterations, hash, length) {
  const key = await crypto.subtle.importKey("raw", password, "PBKDF2", false, ["deriveBits"]);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: "PBKDF2", salt, iterations, hash }, key, length * 8));
}

async function fromEncryptedPkcs8(der, password, onProgress) {
  const top = node(der, 0);
  const [algorithm, data] = children(der, top);
  const [scheme, params] = children(der, algorithm);
  if (oidHex(scheme) !== OID.pbes2) throw new KeyFileError("unsupported_encryption");
  const [kdf, cipher] = children(der, params);
  const [kdfOid, kdfParams] = children(der, kdf);
  const [cipherOid, iv] = children(der, cipher);
  const keyLength = { [OID.aes128cbc]: 16, [OID.aes256cbc]: 32 }[oidHex(cipherOid)];
  if (!keyLength || !iv || iv.value.length !== 16) throw new KeyFileError("unsupported_encryption");
  const fields = children(der, kdfParams);
  let key;
  if (oidHex(kdfOid) === OID.pbkdf2) {
    const prf = fields.find((f) => f.tag === 0x30);
    const prfOid = prf ? oidHex(children(der, prf)[0]) : OID.hmacWithSHA1;
    const hash = { [OID.hmacWithSHA1]: "SHA-1", [OID.hmacWithSHA256]: "SHA-256" }[prfOid];
    if (!hash) throw new KeyFileError("unsupported_encryption");
    key = await pbkdf2(password, fields[0].value, integer(fields[1]), hash, keyLength);
  } else if (oidHex(kdfOid) === OID.scrypt) {
    const [salt, n, r, p] = fields;
    key = await scrypt(password, salt.value, integer(n), integer(r), integer(p), keyLength, onProgress);
  } else {
    throw new KeyFileError("unsupported_encryption");
  }
  return fromPkcs8(await aesCbcDecrypt(key, iv.value, data.value));
}

async function fromEbidKey(blob, password, onProgress) {
  // header: "EBIDKEY" (7) || version (1) || kdf (1) || log2 N (1) || r (1) || p (1) || salt (16) || nonce (12)
  if (blob.length < 40 + 16) throw new KeyFileError("damaged");
  const magic = new TextDecoder().decode(blob.subarray(0, 7));
  const [version, kdf, log2n, r, p] = blob.subarray(7, 12);
  if (magic !== "EBIDKEY" || version !== 1 || kdf !== 1) throw new KeyFileError("unsupported_encryption");
  if (log2n < 14 || log2n > 22 || r < 1 || r > 32 || p < 1 || p > 16) throw new KeyFileError("damaged");
  const header = blob.subarray(0, 40);
  const key = await scrypt(password, blob.subarray(12, 28), 2 ** log2n, r, p, 32, onProgress);
  const aes = await crypto.subtle.importKey("raw", key, "AES-GCM", false, ["decrypt"]);
  let der;
  try {
    der = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: blob.subarray(28, 40),
      additionalData: header, tagLength: 128 }, aes, blob.subarray(40)));
  } catch (err) {
    throw new KeyFileError("wrong_passphrase");
  }
  return fromPkcs8(der);
}

// Read a private key file's text; `passphrase` is needed for the encrypted kinds.
export async function readKeyFile(text, passphrase = "", { onProgress = null } = {}) {
  const kind = kindOf(text);
  if (kind === "certificate" || kind === "public") throw new KeyFileError("not_private");
  if (kind === null) throw new KeyFileError("not_a_key");
  let der;
  try {
    der = b64decode(armour(text).body);
  } catch (err) {
    throw new KeyFileError("damaged");
  }
  if (needsPassphrase(kind) && !passphrase) throw new KeyFileError("passphrase_needed");
  const password = new TextEncoder().encode(passphrase.normalize("NFC"));
  if (kind === "ebid") return fromEbidKey(der, password, onProgress);
  if (kind === "pkcs8-encrypted") return fromEncryptedPkcs8(der, password, onProgress);
  if (kind === "pkcs8") return fromPkcs8(der);
  return fromEcPrivateKey(der, false);
}

