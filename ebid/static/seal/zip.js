// A small ZIP writer (STORE only, no compression): the bid file sealed in the browser is a ZIP of the
// documents and bid.json, laid out as `ebid client build` lays it out (ebid/client/bidzip.py):
// documents/<name> sorted by name, then bid.json, every entry dated 1980-01-01 00:00 (the ZIP epoch),
// so that a build does not depend on when it ran. The archive is a Blob composed of the local headers
// and the files themselves: nothing is copied into memory. Sizes are limited to 4 GiB (no ZIP64).

import { concat, utf8 } from "./bytes.js";
import { Sha256 } from "./sha256.js";

const TABLE = (() => {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
})();

export class Crc32 {
  constructor() { this.crc = -1; }

  update(bytes) {
    let c = this.crc;
    for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    this.crc = c;
    return this;
  }

  value() { return (this.crc ^ -1) >>> 0; }
}

// SHA-256 and CRC-32 of a Blob in one pass; onProgress(bytesDone) after each slice.
export async function digestBlob(blob, { sliceSize = 4 << 20, onProgress = null } = {}) {
  const sha = new Sha256(), crc = new Crc32();
  for (let pos = 0; pos < blob.size; pos += sliceSize) {
    const bytes = new Uint8Array(await blob.slice(pos, pos + sliceSize).arrayBuffer());
    sha.update(bytes);
    crc.update(bytes);
    if (onProgress) onProgress(Math.min(pos + sliceSize, blob.size));
  }
  return { sha256: sha.digest(), crc32: crc.value(), size: blob.size };
}

function le16(n) { return Uint8Array.of(n & 0xff, (n >>> 8) & 0xff); }
function le32(n) { return Uint8Array.of(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff); }

const DOS_TIME = 0;
const DOS_DATE = (0 << 9) | (1 << 5) | 1; // 1980-01-01
const UTF8_FLAG = 0x0800;
const LIMIT = 0xffffffff;

// entries: [{name, data: Blob, crc32, size}] in archive order; returns the ZIP as a Blob.
export function buildZip(entries) {
  if (entries.length > 0xffff) throw new Error("too many files for one ZIP");
  const parts = [], central = [];
  let offset = 0;
  for (const entry of entries) {
    const name = utf8(entry.name);
    if (entry.size !== entry.data.size) throw new Error(`${entry.name} changed while the bid was being built`);
    const common = concat(le16(20), le16(UTF8_FLAG), le16(0), le16(DOS_TIME), le16(DOS_DATE), le32(entry.crc32),
      le32(entry.size), le32(entry.size), le16(name.length), le16(0));
    const local = concat(le32(0x04034b50), common, name);
    if (offset + local.length + entry.size > LIMIT) throw new Error("the bid is larger than 4 GiB");
    central.push(concat(le32(0x02014b50), le16(0x0314), common, le16(0), le16(0), le16(0), le32(0o100644 << 16),
      le32(offset), name));
    parts.push(local, entry.data);
    offset += local.length + entry.size;
  }
  const directory = concat(...central);
  const end = concat(le32(0x06054b50), le16(0), le16(0), le16(entries.length), le16(entries.length),
    le32(directory.length), le32(offset), le16(0));
  return new Blob([...parts, directory, end], { type: "application/zip" });
}

async function inflateRaw(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// Read one entry (e.g. bid.json, at most `limit` bytes) from a ZIP Blob; null when it is absent.
export async function readEntry(blob, wanted, limit = 1 << 20) {
  const tailSize = Math.min(blob.size, 65557);
  const tail = new Uint8Array(await blob.slice(blob.size - tailSize).arrayBuffer());
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail[i] === 0x50 && tail[i + 1] === 0x4b && tail[i + 2] === 5 && tail[i + 3] === 6) { eocd = i; break; }
  }
  if (eocd < 0) throw new Error("not a ZIP file");
  const view = new DataView(tail.buffer);
  const count = view.getUint16(eocd + 10, true);
  const dirSize = view.getUint32(eocd + 12, true);
  const dirOffset = view.getUint32(eocd + 16, true);
  if (dirOffset + dirSize > blob.size) throw new Error("the ZIP is damaged");
  const dir = new Uint8Array(await blob.slice(dirOffset, dirOffset + dirSize).arrayBuffer());
  const dv = new DataView(dir.buffer);
  const decoder = new TextDecoder();
  for (let pos = 0, n = 0; n < count && pos + 46 <= dir.length; n++) {
    if (dv.getUint32(pos, true) !== 0x02014b50) throw new Error("the ZIP is damaged");
    const method = dv.getUint16(pos + 10, true);
    const compressed = dv.getUint32(pos + 20, true);
    const nameLength = dv.getUint16(pos + 28, true);
    const extra = dv.getUint16(pos + 30, true), comment = dv.getUint16(pos + 32, true);
    const local = dv.getUint32(pos + 42, true);
    const name = decoder.decode(dir.subarray(pos + 46, pos + 46 + nameLength));
    pos += 46 + nameLength + extra + comment;
    if (name !== wanted) continue;
    if (compressed > limit) throw new Error(`${wanted} is too large`);
    const head = new DataView(await blob.slice(local, local + 30).arrayBuffer());
    const start = local + 30 + head.getUint16(26, true) + head.getUint16(28, true);
    const data = new Uint8Array(await blob.slice(start, start + compressed).arrayBuffer());
    if (method === 0) return data;
    if (method === 8) return inflateRaw(data);
    throw new Error(`${wanted} uses an unsupported compression`);
  }
  return null;
}
