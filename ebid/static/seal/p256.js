// EC P-256 keys for the sealer: key ids, public keys from PEM, key pairs from a private scalar, and
// ECDSA signatures over a precomputed SHA-256 digest (raw r || s, low s), as crypto/suites.py makes them.
//
// Why not crypto.subtle.sign: WebCrypto's ECDSA hashes the message itself and has no "prehashed" mode,
// so it would need the whole envelope (up to gigabytes) in one buffer. Here the point multiplication
// R = k·G is done natively by WebCrypto (importing k as a private key makes the browser compute its
// public point), k comes from RFC 6979 (HMAC-SHA256, deterministic, so no weak random number can leak
// the key), and only s = k⁻¹(z + r·d) mod n is computed with BigInt. WebCrypto does not normalise s
// either; the envelope format requires s ≤ n/2, so a high s is replaced by n − s.

import { b64urlDecode, concat, fromBigInt, fromHex, toBigInt } from "./bytes.js";
import { sha256 } from "./sha256.js";

export const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const HALF_N = N >> 1n;
const SPKI_PREFIX = fromHex("3059301306072a8648ce3d020106082a8648ce3d030107034200");
const PKCS8_ALGORITHM = fromHex("301306072a8648ce3d020106082a8648ce3d030107");
const subtle = () => {
  if (!globalThis.crypto || !crypto.subtle) {
    throw new Error("This browser offers no WebCrypto here (open the page over HTTPS or on localhost).");
  }
  return crypto.subtle;
};

export function spkiOf(point) {
  return concat(SPKI_PREFIX, point);
}

// ebid's key id: SHA-256 of the SubjectPublicKeyInfo DER of the key.
export function keyId(point) {
  return sha256(spkiOf(point));
}

// A minimal PKCS#8 (RFC 5208) wrapping of an ECPrivateKey that holds only the scalar.
export function pkcs8FromScalar(scalar) {
  const ecPrivateKey = concat(Uint8Array.of(0x30, 0x25, 0x02, 0x01, 0x01, 0x04, 0x20), scalar);
  const body = concat(Uint8Array.of(0x02, 0x01, 0x00), PKCS8_ALGORITHM,
    Uint8Array.of(0x04, ecPrivateKey.length), ecPrivateKey);
  return concat(Uint8Array.of(0x30, body.length), body);
}

function checkScalar(scalar) {
  const d = toBigInt(scalar);
  if (scalar.length !== 32 || d <= 0n || d >= N) throw new Error("not a valid P-256 private key");
  return d;
}

// The uncompressed public point (04 || x || y) of a private scalar, computed by the browser.
export async function pointOf(scalar) {
  checkScalar(scalar);
  const key = await subtle().importKey("pkcs8", pkcs8FromScalar(scalar), { name: "ECDH", namedCurve: "P-256" },
    true, ["deriveBits"]);
  const jwk = await subtle().exportKey("jwk", key);
  return concat(Uint8Array.of(4), b64urlDecode(jwk.x), b64urlDecode(jwk.y));
}

export async function ecdhPrivateKey(scalar) {
  checkScalar(scalar);
  return subtle().importKey("pkcs8", pkcs8FromScalar(scalar), { name: "ECDH", namedCurve: "P-256" }, false,
    ["deriveBits"]);
}

export async function ecdhPublicKey(point) {
  return subtle().importKey("raw", point, { name: "ECDH", namedCurve: "P-256" }, false, []);
}

// The 32-byte x coordinate of d·P (what RFC 9180's DHKEM(P-256) calls DH).
export async function ecdh(scalar, point) {
  const bits = await subtle().deriveBits({ name: "ECDH", public: await ecdhPublicKey(point) },
    await ecdhPrivateKey(scalar), 256);
  return new Uint8Array(bits);
}

export function pemBody(pem, label) {
  const match = new RegExp(`-----BEGIN ${label}-----([^-]+)-----END ${label}-----`).exec(pem);
  return match ? match[1] : null;
}

// The point of a SubjectPublicKeyInfo PEM ("PUBLIC KEY"); the browser checks it lies on P-256.
export async function pointFromPem(pem) {
  const body = pemBody(pem, "PUBLIC KEY");
  if (body === null) throw new Error("not a PEM public key");
  const der = Uint8Array.from(atob(body.replace(/\s+/g, "")), (c) => c.charCodeAt(0));
  const key = await subtle().importKey("spki", der, { name: "ECDSA", namedCurve: "P-256" }, true, ["verify"]);
  return new Uint8Array(await subtle().exportKey("raw", key));
}

async function hmac(key, ...parts) {
  const k = await subtle().importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await subtle().sign("HMAC", k, concat(...parts)));
}

function mod(a) {
  const r = a % N;
  return r < 0n ? r + N : r;
}

function inverse(a) {
  // Fermat: a^(n-2) mod n (n is prime)
  let result = 1n, base = mod(a), e = N - 2n;
  while (e > 0n) {
    if (e & 1n) result = (result * base) % N;
    base = (base * base) % N;
    e >>= 1n;
  }
  return result;
}

// ECDSA P-256 over a SHA-256 digest; returns raw r (32) || s (32) with s ≤ n/2.
export async function signDigest(scalar, digest) {
  const d = checkScalar(scalar);
  if (digest.length !== 32) throw new Error("a SHA-256 digest has 32 bytes");
  const z = toBigInt(digest);
  const h1 = fromBigInt(mod(z), 32); // bits2octets(h1), RFC 6979 §2.3.4
  let V = new Uint8Array(32).fill(1);
  let K = new Uint8Array(32);
  K = await hmac(K, V, Uint8Array.of(0), scalar, h1);
  V = await hmac(K, V);
  K = await hmac(K, V, Uint8Array.of(1), scalar, h1);
  V = await hmac(K, V);
  for (;;) {
    V = await hmac(K, V);
    const k = toBigInt(V);
    if (k > 0n && k < N) {
      const R = await pointOf(fromBigInt(k, 32));
      const r = mod(toBigInt(R.subarray(1, 33)));
      if (r !== 0n) {
        let s = mod(inverse(k) * (z + r * d));
        if (s !== 0n) {
          if (s > HALF_N) s = N - s;
          return concat(fromBigInt(r, 32), fromBigInt(s, 32));
        }
      }
    }
    K = await hmac(K, V, Uint8Array.of(0));
    V = await hmac(K, V);
  }
}

// Verify a raw r || s ECDSA P-256 / SHA-256 signature of `message`; a high s is refused (as in ebid).
export async function verify(point, signature, message) {
  if (signature.length !== 64) return false;
  const r = toBigInt(signature.subarray(0, 32)), s = toBigInt(signature.subarray(32));
  if (r <= 0n || r >= N || s <= 0n || s > HALF_N) return false;
  const key = await subtle().importKey("raw", point, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
  return subtle().verify({ name: "ECDSA", hash: "SHA-256" }, key, signature, message);
}

// Replace a high s by n − s (used by signDigest; exported so that tests can check it on its own).
export function lowS(signature) {
  const s = toBigInt(signature.subarray(32));
  return s > HALF_N ? concat(signature.subarray(0, 32), fromBigInt(N - s, 32)) : signature;
}
