// scrypt (RFC 7914): WebCrypto has PBKDF2 but no scrypt, and `ebid client keygen` (crypto/keys.py)
// protects private keys with scrypt. PBKDF2-HMAC-SHA256 is WebCrypto's; ROMix, BlockMix and
// Salsa20/8 are here. Memory is 128·r·N bytes (128 MiB for the default N = 2^17, r = 8).

import { yieldToBrowser } from "./bytes.js";

async function pbkdf2(password, salt, length) {
  const key = await crypto.subtle.importKey("raw", password, "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits({ name: "PBKDF2", salt, iterations: 1, hash: "SHA-256" }, key,
    length * 8);
  return new Uint8Array(bits);
}

function salsa208(B, x) {
  // B: 16 words in, replaced by Salsa20/8(B); x: 16 words of scratch
  for (let i = 0; i < 16; i++) x[i] = B[i];
  let x0 = x[0], x1 = x[1], x2 = x[2], x3 = x[3], x4 = x[4], x5 = x[5], x6 = x[6], x7 = x[7];
  let x8 = x[8], x9 = x[9], x10 = x[10], x11 = x[11], x12 = x[12], x13 = x[13], x14 = x[14], x15 = x[15];
  let t;
  for (let i = 0; i < 8; i += 2) {
    t = (x0 + x12) | 0; x4 ^= (t << 7) | (t >>> 25); t = (x4 + x0) | 0; x8 ^= (t << 9) | (t >>> 23);
    t = (x8 + x4) | 0; x12 ^= (t << 13) | (t >>> 19); t = (x12 + x8) | 0; x0 ^= (t << 18) | (t >>> 14);
    t = (x5 + x1) | 0; x9 ^= (t << 7) | (t >>> 25); t = (x9 + x5) | 0; x13 ^= (t << 9) | (t >>> 23);
    t = (x13 + x9) | 0; x1 ^= (t << 13) | (t >>> 19); t = (x1 + x13) | 0; x5 ^= (t << 18) | (t >>> 14);
    t = (x10 + x6) | 0; x14 ^= (t << 7) | (t >>> 25); t = (x14 + x10) | 0; x2 ^= (t << 9) | (t >>> 23);
    t = (x2 + x14) | 0; x6 ^= (t << 13) | (t >>> 19); t = (x6 + x2) | 0; x10 ^= (t << 18) | (t >>> 14);
    t = (x15 + x11) | 0; x3 ^= (t << 7) | (t >>> 25); t = (x3 + x15) | 0; x7 ^= (t << 9) | (t >>> 23);
    t = (x7 + x3) | 0; x11 ^= (t << 13) | (t >>> 19); t = (x11 + x7) | 0; x15 ^= (t << 18) | (t >>> 14);
    t = (x0 + x3) | 0; x1 ^= (t << 7) | (t >>> 25); t = (x1 + x0) | 0; x2 ^= (t << 9) | (t >>> 23);
    t = (x2 + x1) | 0; x3 ^= (t << 13) | (t >>> 19); t = (x3 + x2) | 0; x0 ^= (t << 18) | (t >>> 14);
    t = (x5 + x4) | 0; x6 ^= (t << 7) | (t >>> 25); t = (x6 + x5) | 0; x7 ^= (t << 9) | (t >>> 23);
    t = (x7 + x6) | 0; x4 ^= (t << 13) | (t >>> 19); t = (x4 + x7) | 0; x5 ^= (t << 18) | (t >>> 14);
    t = (x10 + x9) | 0; x11 ^= (t << 7) | (t >>> 25); t = (x11 + x10) | 0; x8 ^= (t << 9) | (t >>> 23);
    t = (x8 + x11) | 0; x9 ^= (t << 13) | (t >>> 19); t = (x9 + x8) | 0; x10 ^= (t << 18) | (t >>> 14);
    t = (x15 + x14) | 0; x12 ^= (t << 7) | (t >>> 25); t = (x12 + x15) | 0; x13 ^= (t << 9) | (t >>> 23);
    t = (x13 + x12) | 0; x14 ^= (t << 13) | (t >>> 19); t = (x14 + x13) | 0; x15 ^= (t << 18) | (t >>> 14);
  }
  B[0] += x0; B[1] += x1; B[2] += x2; B[3] += x3; B[4] += x4; B[5] += x5; B[6] += x6; B[7] += x7;
  B[8] += x8; B[9] += x9; B[10] += x10; B[11] += x11; B[12] += x12; B[13] += x13; B[14] += x14; B[15] += x15;
}

function blockMix(B, Y, r, x, X) {
  // B: 32r words in and out; Y: 32r words of scratch; X: 16 words
  X.set(B.subarray((2 * r - 1) * 16, 2 * r * 16));
  for (let i = 0; i < 2 * r; i++) {
    for (let k = 0; k < 16; k++) X[k] ^= B[i * 16 + k];
    salsa208(X, x);
    // even blocks to the first half, odd blocks to the second
    Y.set(X, ((i >> 1) + (i & 1) * r) * 16);
  }
  B.set(Y);
}

// scrypt(password, salt, N, r, p, dkLen); onProgress(fraction) while it runs.
export async function scrypt(password, salt, N, r, p, dkLen, onProgress = null) {
  if (N < 2 || (N & (N - 1)) !== 0) throw new Error("scrypt N must be a power of two");
  const blockWords = 32 * r;
  const B = await pbkdf2(password, salt, p * 128 * r);
  const words = new Uint32Array(p * blockWords);
  for (let i = 0; i < words.length; i++) {
    words[i] = B[i * 4] | (B[i * 4 + 1] << 8) | (B[i * 4 + 2] << 16) | (B[i * 4 + 3] << 24);
  }
  let V;
  try {
    V = new Uint32Array(blockWords * N);
  } catch (err) {
    throw new Error(`this browser cannot allocate the ${Math.round((128 * r * N) / 1048576)} MiB the key file's ` +
      "scrypt parameters need");
  }
  const Y = new Uint32Array(blockWords), x = new Uint32Array(16), Xs = new Uint32Array(16);
  const step = Math.max(1, N >> 5);
  for (let part = 0; part < p; part++) {
    const X = words.subarray(part * blockWords, (part + 1) * blockWords);
    for (let i = 0; i < N; i++) {
      V.set(X, i * blockWords);
      blockMix(X, Y, r, x, Xs);
      if (i % step === step - 1) {
        if (onProgress) onProgress((part * 2 * N + i + 1) / (2 * N * p));
        await yieldToBrowser();
      }
    }
    for (let i = 0; i < N; i++) {
      const j = X[(2 * r - 1) * 16] & (N - 1);
      for (let k = 0; k < blockWords; k++) X[k] ^= V[j * blockWords + k];
      blockMix(X, Y, r, x, Xs);
      if (i % step === step - 1) {
        if (onProgress) onProgress((part * 2 * N + N + i + 1) / (2 * N * p));
        await yieldToBrowser();
      }
    }
  }
  const out = new Uint8Array(words.length * 4);
  for (let i = 0; i < words.length; i++) {
    out[i * 4] = words[i]; out[i * 4 + 1] = words[i] >>> 8;
    out[i * 4 + 2] = words[i] >>> 16; out[i * 4 + 3] = words[i] >>> 24;
  }
  V = null;
  return pbkdf2(password, out, dkLen);
}
