"""The envelope header: byte layout, encoding and strict parsing (format version 1).

Layout (all integers big-endian; see docs/envelope.md for the full specification)::

    off  size  field
      0     7  magic            b"EBIDENV"
      7     1  version          0x01
      8     2  suite            algorithm suite id (1 = P-256/HPKE/AES-256-GCM/SHA-256)
     10     4  header_length    total header bytes = offset of the first segment
     14     1  key_mode         1 = single (every recipient wraps the content key),
                                2 = split (double envelope: key = tender part XOR bidder part)
     15     1  flags            bit 0: plaintext_length is stated; other bits zero
     16     4  segment_size     plaintext bytes per segment (64 .. 16 MiB)
     20     7  nonce_prefix     random
     27     8  plaintext_length total plaintext bytes, or 0 when not stated
     35    32  signer_key_id    key id of the bidder's signing key
     67     2  context_length   n
     69     n  context          caller's bytes (e.g. canonical JSON of tender, lot, bidder, version)
   69+n     1  recipient_count  1 .. 16
            .  recipients       each: role (1) || key_id (32) || enc_length (2) || enc
                                      || wrapped_length (2) || wrapped

The "core" of the header is ``header[0 : 69 + n]`` (everything before the recipient count); its
digest is the associated data of every key wrap, so a wrapped key cannot be moved to another
envelope. The digest of the whole header is the associated data of every segment.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from crypto import suites
from crypto.errors import EnvelopeFormatError, EnvelopeTruncated

MAGIC = b"EBIDENV"
VERSION = 1
KEY_MODE_SINGLE = 1
KEY_MODE_SPLIT = 2
ROLE_TENDER = 1
ROLE_BIDDER = 2
ROLE_NAMES = {ROLE_TENDER: "tender opening key", ROLE_BIDDER: "bidder's own key"}
FLAG_LENGTH_STATED = 0x01
MIN_SEGMENT_SIZE = 64
MAX_SEGMENT_SIZE = 1 << 24
DEFAULT_SEGMENT_SIZE = 1 << 20
MAX_RECIPIENTS = 16
MAX_CONTEXT = 0xFFFF
MAX_HEADER = 1 << 18
MAX_SEGMENTS = 1 << 32
NONCE_PREFIX_SIZE = 7
TAG_SIZE = 16
WRAP_INFO = b"ebid/envelope/v1 content-key"

_PREFIX = struct.Struct(">7sBHI")  # magic, version, suite, header_length
_FIXED = struct.Struct(">7sBHIBBI7sQ32sH")
FIXED_SIZE = _FIXED.size  # 69
KEY_ID_SIZE = 32
_RECIPIENT_FIXED = 1 + KEY_ID_SIZE + 2 + 2


@dataclass(frozen=True)
class RecipientEntry:
    """One wrapped copy (or part) of the content key, as stored in the header."""

    role: int
    key_id: bytes
    enc: bytes
    wrapped: bytes

    @property
    def role_name(self) -> str:
        return ROLE_NAMES.get(self.role, f"role {self.role}")


@dataclass(frozen=True)
class Header:
    """A parsed envelope header; ``raw`` holds its exact bytes."""

    suite_id: int
    key_mode: int
    segment_size: int
    nonce_prefix: bytes
    plaintext_length: int | None
    signer_key_id: bytes
    context: bytes
    recipients: tuple[RecipientEntry, ...]
    raw: bytes
    core_length: int

    @property
    def suite(self) -> suites.Suite:
        return suites.get(self.suite_id)

    @property
    def length(self) -> int:
        return len(self.raw)

    @property
    def core(self) -> bytes:
        return self.raw[:self.core_length]

    def digest(self) -> bytes:
        """Suite hash of the whole header: the associated data of every segment."""
        return self.suite.hash(self.raw)

    def core_digest(self) -> bytes:
        """Suite hash of the header core: the associated data of every key wrap."""
        return self.suite.hash(self.core)

    def recipients_for(self, key_id: bytes) -> list[RecipientEntry]:
        return [r for r in self.recipients if r.key_id == key_id]


def wrap_info(role: int) -> bytes:
    """The HPKE ``info`` for a key wrap: ``b"ebid/envelope/v1 content-key" || role``."""
    return WRAP_INFO + bytes([role])


def segment_count(plaintext_length: int, segment_size: int) -> int:
    """Segments for a plaintext: at least one (an empty plaintext is one empty final segment)."""
    return max(1, -(-plaintext_length // segment_size))


def body_length(plaintext_length: int, segment_size: int) -> int:
    """Ciphertext bytes (all segments with their tags) for a plaintext of the given length."""
    return plaintext_length + TAG_SIZE * segment_count(plaintext_length, segment_size)


def check_parameters(suite: suites.Suite, key_mode: int, segment_size: int, context: bytes,
                     roles: list[int]) -> None:
    if key_mode not in (KEY_MODE_SINGLE, KEY_MODE_SPLIT):
        raise EnvelopeFormatError(f"Unknown key mode {key_mode} (1 = single, 2 = split)")
    if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
        raise EnvelopeFormatError(
            f"Segment size {segment_size} is outside {MIN_SEGMENT_SIZE} .. {MAX_SEGMENT_SIZE} bytes")
    if len(context) > MAX_CONTEXT:
        raise EnvelopeFormatError(f"The context is {len(context)} bytes; at most {MAX_CONTEXT} are allowed")
    if not 1 <= len(roles) <= MAX_RECIPIENTS:
        raise EnvelopeFormatError(f"An envelope has 1 .. {MAX_RECIPIENTS} recipients, not {len(roles)}")
    unknown = sorted({r for r in roles if r not in ROLE_NAMES})
    if unknown:
        raise EnvelopeFormatError(f"Unknown recipient role(s) {unknown} (1 = tender key, 2 = bidder key)")
    if key_mode == KEY_MODE_SPLIT and not {ROLE_TENDER, ROLE_BIDDER} <= set(roles):
        raise EnvelopeFormatError("Split (double-envelope) mode needs a tender-key recipient and a "
                                  "bidder-key recipient")


def encode_core(*, suite: suites.Suite, key_mode: int, segment_size: int, nonce_prefix: bytes,
                plaintext_length: int | None, signer_key_id: bytes, context: bytes,
                recipient_count: int) -> bytes:
    """Encode the header core; ``header_length`` is computed from the suite's fixed sizes."""
    header_length = (FIXED_SIZE + len(context) + 1
                     + recipient_count * (_RECIPIENT_FIXED + suite.enc_size + suite.wrapped_size))
    flags = FLAG_LENGTH_STATED if plaintext_length is not None else 0
    return _FIXED.pack(MAGIC, VERSION, suite.id, header_length, key_mode, flags, segment_size,
                       nonce_prefix, plaintext_length or 0, signer_key_id, len(context)) + context


def encode_recipients(entries: list[RecipientEntry]) -> bytes:
    out = bytearray([len(entries)])
    for e in entries:
        out += bytes([e.role]) + e.key_id + struct.pack(">H", len(e.enc)) + e.enc
        out += struct.pack(">H", len(e.wrapped)) + e.wrapped
    return bytes(out)


def read_exact(reader: Any, n: int) -> bytes:
    """Read exactly ``n`` bytes or fewer at end of stream."""
    chunks, got = [], 0
    while got < n:
        chunk = reader.read(n - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_header(reader: Any) -> Header:
    """Read and parse the header from the start of a binary stream (leaves it at the first segment)."""
    prefix = read_exact(reader, _PREFIX.size)
    if len(prefix) < _PREFIX.size:
        if MAGIC.startswith(prefix[:7]) and prefix:
            raise EnvelopeTruncated("The envelope is truncated inside its header")
        raise EnvelopeFormatError("Not an ebid envelope (too short)")
    magic, version, suite_id, header_length = _PREFIX.unpack(prefix)
    _check_prefix(magic, version, header_length)
    rest = read_exact(reader, header_length - _PREFIX.size)
    if len(rest) < header_length - _PREFIX.size:
        raise EnvelopeTruncated("The envelope is truncated inside its header")
    return parse_header(prefix + rest)


def _check_prefix(magic: bytes, version: int, header_length: int) -> None:
    if magic != MAGIC:
        raise EnvelopeFormatError("Not an ebid envelope (wrong magic bytes)")
    if version != VERSION:
        raise EnvelopeFormatError(f"Unsupported envelope version {version}; this program reads version {VERSION}")
    if not FIXED_SIZE + 1 <= header_length <= MAX_HEADER:
        raise EnvelopeFormatError(f"Implausible header length {header_length}")


def parse_header(raw: bytes) -> Header:
    """Parse exactly one header; every field is checked, trailing or missing bytes are refused."""
    raw = bytes(raw)
    if len(raw) < FIXED_SIZE:
        raise EnvelopeFormatError("The header is shorter than its fixed part")
    (magic, version, suite_id, header_length, key_mode, flags, segment_size, nonce_prefix,
     plaintext_length, signer_key_id, context_length) = _FIXED.unpack_from(raw)
    _check_prefix(magic, version, header_length)
    if header_length != len(raw):
        raise EnvelopeFormatError(f"The header states {header_length} bytes but has {len(raw)}")
    suite = suites.get(suite_id)
    if flags & ~FLAG_LENGTH_STATED:
        raise EnvelopeFormatError(f"Unknown header flags {flags:#04x}")
    stated = bool(flags & FLAG_LENGTH_STATED)
    if not stated and plaintext_length:
        raise EnvelopeFormatError("The plaintext length field must be zero when the length is not stated")
    pos = FIXED_SIZE
    context = raw[pos:pos + context_length]
    pos += context_length
    if len(context) != context_length or pos >= len(raw):
        raise EnvelopeFormatError("The header ends inside the context")
    core_length = pos
    count = raw[pos]
    pos += 1
    entries = []
    for i in range(count):
        fixed_end = pos + 1 + KEY_ID_SIZE + 2
        if fixed_end > len(raw):
            raise EnvelopeFormatError(f"The header ends inside recipient {i + 1}")
        role, key_id = raw[pos], raw[pos + 1:pos + 1 + KEY_ID_SIZE]
        (enc_length,) = struct.unpack_from(">H", raw, fixed_end - 2)
        enc = raw[fixed_end:fixed_end + enc_length]
        pos = fixed_end + enc_length
        if enc_length != suite.enc_size or pos + 2 > len(raw):
            raise EnvelopeFormatError(f"Recipient {i + 1} has a malformed key encapsulation")
        (wrapped_length,) = struct.unpack_from(">H", raw, pos)
        wrapped = raw[pos + 2:pos + 2 + wrapped_length]
        pos += 2 + wrapped_length
        if wrapped_length != suite.wrapped_size or len(wrapped) != wrapped_length:
            raise EnvelopeFormatError(f"Recipient {i + 1} has a malformed wrapped key")
        entries.append(RecipientEntry(role, key_id, enc, wrapped))
    if pos != len(raw):
        raise EnvelopeFormatError("The header has bytes after its last recipient")
    if len({e.key_id for e in entries}) != len(entries):
        raise EnvelopeFormatError("The header names the same recipient key twice")
    check_parameters(suite, key_mode, segment_size, context, [e.role for e in entries])
    if stated and segment_count(plaintext_length, segment_size) > MAX_SEGMENTS:
        raise EnvelopeFormatError("The stated plaintext length needs more segments than the format allows")
    return Header(suite_id, key_mode, segment_size, nonce_prefix, plaintext_length if stated else None,
                  signer_key_id, context, tuple(entries), raw, core_length)
