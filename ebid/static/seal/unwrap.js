// The opening side of the envelope's key wrap (docs/envelope.md §5.1): read an envelope header and unwrap,
// with the bidder's own private key, the content key (or, in split mode, the bidder's part of it) that
// was wrapped for that key. The browser twin of crypto/envelope.py's unwrap_key_part. The private key and
// the bid stay in the browser; only the unwrapped key goes to the platform, which checks it against the
// envelope (crypto.envelope.check_content_key) before it decrypts anything.

import { equal } from "./bytes.js";
import { MAGIC, SUITE_P256, VERSION, wrapInfo } from "./envelope.js";
import * as hpke from "./hpke.js";
import { keyId } from "./p256.js";
import { sha256 } from "./sha256.js";

const FIXED_SIZE = 69;

export class UnwrapError extends Error {
  constructor(code, detail = "") {
    super(detail || code);
    this.code = code; // "bad_header", "not_a_recipient", "unwrap_failed"
  }
}

function readU16(bytes, at) {
  if (at + 2 > bytes.length) throw new UnwrapError("bad_header", "the header is cut short");
  return (bytes[at] << 8) | bytes[at + 1];
}

// Parse the header bytes: {keyMode, core, recipients: [{role, keyId, enc, wrapped}]}.
export function parseHeader(bytes) {
  if (bytes.length < FIXED_SIZE + 1 || !equal(bytes.subarray(0, MAGIC.length), MAGIC)) {
    throw new UnwrapError("bad_header", "not an ebid envelope header");
  }
  if (bytes[7] !== VERSION || readU16(bytes, 8) !== SUITE_P256) {
    throw new UnwrapError("bad_header", "an envelope version or suite this page does not know");
  }
  const contextLength = readU16(bytes, 67);
  const coreEnd = FIXED_SIZE + contextLength;
  if (coreEnd + 1 > bytes.length) throw new UnwrapError("bad_header", "the header is cut short");
  const count = bytes[coreEnd];
  const recipients = [];
  let at = coreEnd + 1;
  for (let i = 0; i < count; i++) {
    if (at + 33 > bytes.length) throw new UnwrapError("bad_header", "the header is cut short");
    const role = bytes[at];
    const id = bytes.slice(at + 1, at + 33);
    const encLength = readU16(bytes, at + 33);
    const enc = bytes.slice(at + 35, at + 35 + encLength);
    const wrappedLength = readU16(bytes, at + 35 + encLength);
    const start = at + 37 + encLength;
    if (start + wrappedLength > bytes.length) throw new UnwrapError("bad_header", "the header is cut short");
    recipients.push({ role, keyId: id, enc, wrapped: bytes.slice(start, start + wrappedLength) });
    at = start + wrappedLength;
  }
  return { keyMode: bytes[14], core: bytes.slice(0, coreEnd), recipients };
}

// Unwrap what the header holds for `key` ({scalar, point}, as readKeyFile returns it):
// {role, keyMode, part}. In single mode `part` is the content key itself; in split mode it is the
// bidder's half, which the platform combines with the tender key's half.
export async function unwrapKeyPart(headerBytes, key) {
  const header = parseHeader(headerBytes);
  const id = keyId(key.point);
  const entry = header.recipients.find((r) => equal(r.keyId, id));
  if (!entry) throw new UnwrapError("not_a_recipient", "this envelope is not addressed to the key file chosen");
  try {
    const part = await hpke.open(key.scalar, entry.enc, entry.wrapped,
      { info: wrapInfo(entry.role), aad: sha256(header.core) });
    return { role: entry.role, keyMode: header.keyMode, part };
  } catch (err) {
    throw new UnwrapError("unwrap_failed", "the wrapped key does not decrypt with this key file");
  }
}
