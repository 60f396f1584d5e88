// Byte helpers shared by the sealing modules: hex, base64, UTF-8, big-endian integers, BigInt.

export const utf8 = (text) => new TextEncoder().encode(text);

export function hex(bytes) {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

export function fromHex(text) {
  if (typeof text !== "string" || text.length % 2 || /[^0-9a-fA-F]/.test(text)) {
    throw new Error("not a hexadecimal string");
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(i * 2, 2), 16);
  return out;
}

export function concat(...parts) {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

export function equal(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export function u8(n) { return Uint8Array.of(n & 0xff); }
export function u16(n) { return Uint8Array.of((n >>> 8) & 0xff, n & 0xff); }
export function u32(n) { return Uint8Array.of((n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff); }

export function u64(n) {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error("length out of range");
  return concat(u32(Math.floor(n / 0x100000000)), u32(n >>> 0));
}


export function toBigInt(bytes) {
  return bytes.length ? BigInt("0x" + hex(bytes)) : 0n;
}

export function fromBigInt(value, length) {
  const text = value.toString(16).padStart(length * 2, "0");
  if (text.length > length * 2) throw new Error("integer too large");
  return fromHex(text);
}

export function b64encode(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

export function b64decode(text) {
  const raw = atob(text.replace(/\s+/g, ""));
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

export function b64urlDecode(text) {
  const std = text.replace(/-/g, "+").replace(/_/g, "/");
  return b64decode(std + "=".repeat((4 - (std.length % 4)) % 4));
}

// The event loop gets a turn: long loops call this so that progress bars repaint. It only waits when
// 40 ms have passed since the last turn (timers are clamped to 4 ms, so yielding always is slow).
let lastTurn = 0;
export function yieldToBrowser() {
  const now = performance.now();
  if (now - lastTurn < 40) return Promise.resolve();
  lastTurn = now;
  return new Promise((resolve) => setTimeout(resolve, 0));
}
