"""Sealed-bid envelopes: seal, open, verify without a key, check an unwrapped content key.

An envelope is ``header || segments || signature`` (see :mod:`crypto.header` and docs/envelope.md):

* a random content key (32 bytes in suite 1) encrypts the plaintext in STREAM segments
  (:mod:`crypto.stream`), each authenticated together with the header digest;
* the content key is wrapped for every recipient (HPKE in suite 1): the tender opening key and the
  bidder's own key. In split mode (the classic double envelope) the content key is the XOR of a part
  wrapped for the tender key and a part wrapped for the bidder key, so neither side alone can open it;
* the bidder signs the suite hash of ``header || segments`` (suite 1: plain ECDSA-SHA256 over those
  bytes, so ``openssl dgst -sha256 -verify`` can check it), raw ``r || s``.

Everything streams in bounded memory (two segment buffers). Opening writes plaintext as each segment
authenticates; the signature is checked at the end, so discard the output when an error is raised
(:func:`open_file` does that for you).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from crypto import canonical, suites
from crypto._random import random_bytes
from crypto.errors import (
    ContextMismatch,
    EnvelopeError,
    EnvelopeTampered,
    EnvelopeTruncated,
    MissingKeyPart,
    NotARecipient,
    RecipientMissing,
    SignatureInvalid,
    UnwrapFailed,
    WrongContentKey,
    WrongSigner,
)
from crypto.header import (
    DEFAULT_SEGMENT_SIZE,
    KEY_MODE_SINGLE,
    KEY_MODE_SPLIT,
    MAX_SEGMENTS,
    NONCE_PREFIX_SIZE,
    ROLE_BIDDER,
    ROLE_NAMES,
    ROLE_TENDER,
    TAG_SIZE,
    Header,
    RecipientEntry,
    check_parameters,
    encode_core,
    encode_recipients,
    parse_header,
    read_header,
    segment_count,
    wrap_info,
)
from crypto.stream import LengthCheck, RecordReader, open_segments, seal_segments, segment_nonce, write_all
from crypto.suites import WrapError

__all__ = [
    "DEFAULT_SEGMENT_SIZE", "KEY_MODE_SINGLE", "KEY_MODE_SPLIT", "ROLE_BIDDER", "ROLE_TENDER",
    "EnvelopeInfo", "Header", "Recipient", "bid_context", "check_content_key", "content_key_from",
    "open_bytes", "open_file", "open_stream", "read_header", "seal_bytes", "seal_file", "seal_stream",
    "unwrap_key_part", "verify_bytes", "verify_stream",
]

_AUTO: Any = object()


@dataclass(frozen=True)
class Recipient:
    """Someone the content key (or a part of it) is wrapped for."""

    role: int  # ROLE_TENDER or ROLE_BIDDER
    public_key: Any


@dataclass(frozen=True)
class EnvelopeInfo:
    """What sealing, opening or verifying established about an envelope."""

    header: Header
    size: int  # bytes of the whole envelope
    plaintext_length: int
    segments: int
    signed_digest: bytes  # the digest the bidder's signature covers
    signature: bytes
    sha256: bytes  # SHA-256 of the whole envelope: its content address and the receipt's hash


def bid_context(tender: str, lot: str, bidder: str, bid_version: int) -> bytes:
    """The standard header context: canonical JSON naming what the bid is for."""
    return canonical.encode({"type": "ebid/bid-context/v1", "tender": tender, "lot": lot,
                             "bidder": bidder, "bid_version": bid_version})


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _short(key_id: bytes) -> str:
    return key_id[:8].hex()


def _stream_length(reader: Any) -> int | None:
    try:
        if not reader.seekable():
            return None
        here = reader.tell()
        end = reader.seek(0, io.SEEK_END)
        reader.seek(here)
        return end - here
    except (AttributeError, OSError, ValueError):
        return None


class _FileHash:
    """SHA-256 of the whole envelope; shares the signature hasher when that is plain SHA-256."""

    def __init__(self, suite: suites.Suite) -> None:
        self.own = None if isinstance(suite, suites.P256Suite) else hashlib.sha256()

    def hashers(self, signed: suites.Hasher) -> list[suites.Hasher]:
        return [signed] if self.own is None else [signed, self.own]

    def finish(self, signed: suites.Hasher, signature: bytes) -> bytes:
        h = signed.copy() if self.own is None else self.own
        h.update(signature)
        return h.digest()


# --- sealing -----------------------------------------------------------------------------------------

def seal_stream(reader: Any, writer: Any, *, signer: Any, recipients: Sequence[Recipient],
                context: bytes = b"", key_mode: int = KEY_MODE_SINGLE,
                segment_size: int = DEFAULT_SEGMENT_SIZE, plaintext_length: int | None = _AUTO,
                suite: int = suites.SUITE_P256.id) -> EnvelopeInfo:
    """Seal everything ``reader`` yields into ``writer``; return what was written.

    ``plaintext_length`` defaults to the remaining size of a seekable reader, else "not stated".
    """
    s = suites.get(suite)
    s.check_private_key(signer)
    for r in recipients:
        s.check_public_key(r.public_key)
    check_parameters(s, key_mode, segment_size, context, [r.role for r in recipients])
    if plaintext_length is _AUTO:
        plaintext_length = _stream_length(reader)
    if plaintext_length is not None and (plaintext_length < 0
                                         or segment_count(plaintext_length, segment_size) > MAX_SEGMENTS):
        raise EnvelopeError(f"Cannot seal {plaintext_length} bytes with {segment_size}-byte segments")

    if key_mode == KEY_MODE_SINGLE:
        content_key = random_bytes(s.content_key_size)
        parts = {ROLE_TENDER: content_key, ROLE_BIDDER: content_key}
    else:
        parts = {ROLE_TENDER: random_bytes(s.content_key_size), ROLE_BIDDER: random_bytes(s.content_key_size)}
        content_key = _xor(parts[ROLE_TENDER], parts[ROLE_BIDDER])
    nonce_prefix = random_bytes(NONCE_PREFIX_SIZE)
    signer_public = s.public_key_of(signer)
    core = encode_core(suite=s, key_mode=key_mode, segment_size=segment_size, nonce_prefix=nonce_prefix,
                       plaintext_length=plaintext_length, signer_key_id=s.key_id(signer_public),
                       context=context, recipient_count=len(recipients))
    core_digest = s.hash(core)
    entries = []
    for r in recipients:
        enc, wrapped = s.wrap(r.public_key, parts[r.role], wrap_info(r.role), core_digest)
        entries.append(RecipientEntry(r.role, s.key_id(r.public_key), enc, wrapped))
    header = parse_header(core + encode_recipients(entries))  # also refuses duplicate recipients

    signed = s.signed_hash(signer_public)
    file_hash = _FileHash(s)
    hashers = file_hash.hashers(signed)
    for h in hashers:
        h.update(header.raw)
    write = write_all(writer)
    write(header.raw)
    total, segments = seal_segments(reader, write, aead=s.aead(content_key), nonce_prefix=nonce_prefix,
                                    aad=header.digest(), segment_size=segment_size, hashers=hashers,
                                    plaintext_length=plaintext_length)
    digest = signed.digest()
    signature = s.sign_digest(signer, digest)
    write(signature)
    size = header.length + total + TAG_SIZE * segments + len(signature)
    return EnvelopeInfo(header, size, total, segments, digest, signature, file_hash.finish(signed, signature))


class _Chunks:
    """A writer collecting copies of what it is given (the segment buffers are reused)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: Any) -> int:
        self._chunks.append(bytes(data))
        return len(self._chunks[-1])

    def value(self) -> bytes:
        return b"".join(self._chunks)


def seal_bytes(plaintext: bytes, **options: Any) -> bytes:
    """Seal a byte string (same options as :func:`seal_stream`)."""
    out = _Chunks()
    seal_stream(io.BytesIO(plaintext), out, **options)
    return out.value()


# --- key recovery ------------------------------------------------------------------------------------

def _describe_recipients(header: Header) -> str:
    return "; ".join(f"{e.role_name} {_short(e.key_id)}" for e in header.recipients)


def unwrap_key_part(header: Header, private_key: Any) -> tuple[int, bytes]:
    """Unwrap what the header holds for ``private_key``: ``(role, key or key part)``.

    Raises :class:`NotARecipient` for a key the envelope is not addressed to (nothing is decrypted)
    and :class:`UnwrapFailed` when the wrapped key does not decrypt.
    """
    s = header.suite
    s.check_private_key(private_key)
    key_id = s.key_id(s.public_key_of(private_key))
    entries = header.recipients_for(key_id)
    if not entries:
        raise NotARecipient(f"This envelope is not addressed to key {_short(key_id)}; its recipients are: "
                            f"{_describe_recipients(header)}")
    entry = entries[0]
    try:
        part = s.unwrap(private_key, entry.enc, entry.wrapped, wrap_info(entry.role), header.core_digest())
    except WrapError as exc:
        raise UnwrapFailed(f"The content key wrapped for the {entry.role_name} {_short(key_id)} does not "
                           f"decrypt: the envelope header was altered") from exc
    return entry.role, part


def content_key_from(header: Header, private_keys: Iterable[Any]) -> bytes:
    """The content key, unwrapped with whichever of ``private_keys`` are recipients."""
    parts: dict[int, bytes] = {}
    refusals: list[NotARecipient] = []
    for key in private_keys:
        try:
            role, part = unwrap_key_part(header, key)
        except NotARecipient as exc:
            refusals.append(exc)
            continue
        parts[role] = part
    if header.key_mode == KEY_MODE_SINGLE:
        if parts:
            return next(iter(parts.values()))
        if refusals:
            raise NotARecipient(f"None of the supplied keys is a recipient. {refusals[0]}")
        raise NotARecipient("No private key was supplied to open the envelope")
    missing = [ROLE_NAMES[r] for r in (ROLE_TENDER, ROLE_BIDDER) if r not in parts]
    if missing:
        raise MissingKeyPart("Double-envelope mode: the content key is the XOR of a part wrapped for the "
                             "tender opening key and a part wrapped for the bidder's own key; missing: "
                             f"{' and '.join(missing)}")
    return _xor(parts[ROLE_TENDER], parts[ROLE_BIDDER])


# --- opening and verifying ---------------------------------------------------------------------------

def _check_header(header: Header, signer_public_key: Any, expected_context: bytes | None) -> None:
    s = header.suite
    s.check_public_key(signer_public_key)
    key_id = s.key_id(signer_public_key)
    if key_id != header.signer_key_id:
        raise WrongSigner(f"The envelope was signed by key {_short(header.signer_key_id)}, not by the "
                          f"supplied key {_short(key_id)}")
    if expected_context is not None and header.context != expected_context:
        raise ContextMismatch("The envelope was sealed for another context (tender, lot, bidder or bid "
                              "version) than expected")


def _finish(header: Header, records: RecordReader, aead: Any, write: Any, signer_public_key: Any) -> EnvelopeInfo:
    s = header.suite
    signed = s.signed_hash(signer_public_key)
    file_hash = _FileHash(s)
    hashers = file_hash.hashers(signed)
    for h in hashers:
        h.update(header.raw)
    total, segments = open_segments(records, write, aead=aead, nonce_prefix=header.nonce_prefix,
                                    aad=header.digest(), hashers=hashers,
                                    length_check=LengthCheck(header.plaintext_length, header.segment_size))
    digest, signature = signed.digest(), records.trailer
    if not s.verify_digest(signer_public_key, digest, signature):
        raise SignatureInvalid("The bidder's signature over the header and ciphertext does not verify: the "
                               "envelope was altered, truncated or extended")
    size = header.length + total + TAG_SIZE * segments + len(signature)
    return EnvelopeInfo(header, size, total, segments, digest, signature, file_hash.finish(signed, signature))


def open_stream(reader: Any, writer: Any, *, signer_public_key: Any, private_keys: Iterable[Any] = (),
                content_key: bytes | None = None, expected_context: bytes | None = None) -> EnvelopeInfo:
    """Verify and decrypt an envelope into ``writer``.

    Give the recipients' ``private_keys`` (one suffices in single mode; tender and bidder key in
    split mode) or the already unwrapped ``content_key``. Every segment tag and the signature are
    checked; on any error the partial output must be discarded.
    """
    header = read_header(reader)
    _check_header(header, signer_public_key, expected_context)
    key = content_key if content_key is not None else content_key_from(header, private_keys)
    if len(key) != header.suite.content_key_size:
        raise WrongContentKey(f"A content key of suite {header.suite_id} has {header.suite.content_key_size} "
                              f"bytes, not {len(key)}")
    records = RecordReader(reader, header.segment_size, header.suite.signature_size)
    return _finish(header, records, header.suite.aead(key), write_all(writer), signer_public_key)


def open_bytes(envelope: bytes, **options: Any) -> bytes:
    """Open an envelope held in memory; returns the plaintext (nothing on error)."""
    out = _Chunks()
    open_stream(io.BytesIO(envelope), out, **options)
    return out.value()


def verify_stream(reader: Any, *, signer_public_key: Any, expected_context: bytes | None = None,
                  required_recipients: Sequence[Recipient] = (), expected_size: int | None = None,
                  expected_sha256: bytes | None = None) -> EnvelopeInfo:
    """Check structure, signature, size and hash without any decryption key (the server's finalize).

    ``required_recipients`` lists keys the envelope must be wrapped for (e.g. the tender opening key
    with ``ROLE_TENDER``). The GCM tags cannot be checked without the content key; the signature
    covers every ciphertext byte instead.
    """
    header = read_header(reader)
    _check_header(header, signer_public_key, expected_context)
    s = header.suite
    for r in required_recipients:
        key_id = s.key_id(r.public_key)
        if not any(e.key_id == key_id and e.role == r.role for e in header.recipients):
            raise RecipientMissing(f"The envelope is not wrapped for the required {ROLE_NAMES.get(r.role, r.role)} "
                                   f"{_short(key_id)}; its recipients are: {_describe_recipients(header)}")
    records = RecordReader(reader, header.segment_size, s.signature_size)
    info = _finish(header, records, None, None, signer_public_key)
    if expected_size is not None and info.size != expected_size:
        cls = EnvelopeTruncated if info.size < expected_size else EnvelopeTampered
        raise cls(f"The envelope has {info.size} bytes, {expected_size} were expected")
    if expected_sha256 is not None and info.sha256 != expected_sha256:
        raise EnvelopeTampered(f"The envelope's SHA-256 is {info.sha256.hex()}, {expected_sha256.hex()} "
                               f"was expected")
    return info


def verify_bytes(envelope: bytes, **options: Any) -> EnvelopeInfo:
    return verify_stream(io.BytesIO(envelope), **options)


def check_content_key(envelope: Any, content_key: bytes) -> Header:
    """Check a content key the bidder sent against the envelope's first segment tag.

    ``envelope`` is a binary reader positioned at the start, or the bytes. Reads at most the header
    and one segment plus the signature. Returns the header; raises :class:`WrongContentKey`.
    """
    reader = io.BytesIO(envelope) if isinstance(envelope, (bytes, bytearray, memoryview)) else envelope
    header = read_header(reader)
    s = header.suite
    if len(content_key) != s.content_key_size:
        raise WrongContentKey(f"A content key of suite {header.suite_id} has {s.content_key_size} bytes, "
                              f"not {len(content_key)}")
    records = RecordReader(reader, header.segment_size, s.signature_size)
    record, last = records.next()
    nonce = segment_nonce(header.nonce_prefix, 0, last)
    if suites.decrypt_or_none(s.aead(content_key), nonce, bytes(record), header.digest()) is None:
        raise WrongContentKey("The content key does not open this envelope (the first segment's tag does "
                              "not verify): wrong key, or an altered envelope")
    return header


# --- files -------------------------------------------------------------------------------------------

def _atomic(dst_path: str | os.PathLike[str], work: Any) -> EnvelopeInfo:
    partial = f"{os.fspath(dst_path)}.partial"
    try:
        with open(partial, "wb") as out:
            info = work(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, dst_path)
    except BaseException:
        if os.path.exists(partial):
            os.unlink(partial)
        raise
    return info


def seal_file(src_path: str | os.PathLike[str], dst_path: str | os.PathLike[str], **options: Any) -> EnvelopeInfo:
    """Seal a file into ``dst_path`` (written to ``dst_path.partial``, renamed when complete)."""
    with open(src_path, "rb") as src:
        return _atomic(dst_path, lambda out: seal_stream(src, out, **options))


def open_file(src_path: str | os.PathLike[str], dst_path: str | os.PathLike[str], **options: Any) -> EnvelopeInfo:
    """Open an envelope file into ``dst_path``; nothing is left there unless everything verified."""
    with open(src_path, "rb") as src:
        return _atomic(dst_path, lambda out: open_stream(src, out, **options))
