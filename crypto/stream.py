"""The STREAM segment layer: fixed-size AEAD segments in bounded memory.

The plaintext is cut into segments of ``segment_size`` bytes (the last one may be shorter; an empty
plaintext is a single empty segment). Segment ``i`` is sealed with the suite's AEAD under

    nonce = nonce_prefix (7 bytes) || i (4 bytes, big-endian) || last (1 byte: 0x01 final, else 0x00)

and the header digest as associated data (Hoang, Reyhanitabar, Rogaway, Vizár: "Online
Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", the STREAM construction). The counter
stops reordering and dropping, the last-flag stops truncation at a segment boundary and appending,
the associated data binds every segment to this envelope's header.

Memory: one plaintext buffer and one ciphertext buffer of a segment each, whatever the file size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidTag

from crypto.errors import EnvelopeError, EnvelopeTampered, EnvelopeTruncated
from crypto.header import MAX_SEGMENTS, TAG_SIZE, segment_count
from crypto.suites import Aead, Hasher


def segment_nonce(nonce_prefix: bytes, index: int, last: bool) -> bytes:
    """The 12-byte nonce of segment ``index``."""
    if not 0 <= index < MAX_SEGMENTS:
        raise EnvelopeError("Too many segments for one envelope")
    return nonce_prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


class Source:
    """A binary reader that fills buffers completely (``readinto`` when available, else ``read``)."""

    def __init__(self, reader: Any) -> None:
        self._readinto = getattr(reader, "readinto", None)
        self._read = reader.read

    def fill(self, view: memoryview) -> int:
        """Fill ``view`` from the stream; return the bytes read (fewer only at end of stream)."""
        n, size = 0, len(view)
        while n < size:
            if self._readinto is not None:
                k = self._readinto(view[n:]) or 0
            else:
                chunk = self._read(size - n)
                k = len(chunk)
                view[n:n + k] = chunk
            if k == 0:
                break
            n += k
        return n


def write_all(writer: Any) -> Callable[[Any], None]:
    """``writer.write`` that also copes with raw streams, which may accept only part of a buffer."""
    write = writer.write

    def write_fully(data: Any) -> None:
        view = memoryview(data).cast("B")
        while view.nbytes:
            n = write(view)
            if n is None or n >= view.nbytes:
                return
            view = view[n:]

    return write_fully


def _encryptor(aead: Aead) -> Callable[[bytes, memoryview, bytes, memoryview], memoryview]:
    into = getattr(aead, "encrypt_into", None)

    def encrypt(nonce: bytes, data: memoryview, aad: bytes, out: memoryview) -> memoryview:
        if into is not None:
            into(nonce, data, aad, out)
            return out
        return memoryview(aead.encrypt(nonce, bytes(data), aad))

    return encrypt


def seal_segments(reader: Any, write: Callable[[Any], Any], *, aead: Aead, nonce_prefix: bytes, aad: bytes,
                  segment_size: int, hashers: list[Hasher], plaintext_length: int | None) -> tuple[int, int]:
    """Seal everything ``reader`` yields; return ``(plaintext bytes, segments)``.

    Every ciphertext record (ciphertext || tag) is fed to each hasher and written. When
    ``plaintext_length`` is given, the input must have exactly that many bytes.
    """
    source = Source(reader)
    encrypt = _encryptor(aead)
    plain = memoryview(bytearray(segment_size))
    sealed = memoryview(bytearray(segment_size + TAG_SIZE))
    peek = memoryview(bytearray(1))
    index, total = 0, 0
    n = source.fill(plain)
    while True:
        total += n
        last = n < segment_size or source.fill(peek) == 0
        if plaintext_length is not None and (total > plaintext_length or (last and total != plaintext_length)):
            raise EnvelopeError(f"The input has {'more' if total > plaintext_length else 'fewer'} bytes than "
                                f"the stated plaintext length {plaintext_length} (did the file change?)")
        record = encrypt(segment_nonce(nonce_prefix, index, last), plain[:n], aad, sealed[:n + TAG_SIZE])
        for h in hashers:
            h.update(record)
        write(record)
        if last:
            return total, index + 1
        index += 1
        plain[0] = peek[0]
        n = 1 + source.fill(plain[1:])


class RecordReader:
    """Reads ciphertext records and holds back the fixed-size trailer (the signature) at the end.

    A record is known not to be the last one when more than ``trailer_size`` bytes follow it; so the
    reader keeps ``record + trailer + 1`` bytes buffered, never more.
    """

    def __init__(self, reader: Any, segment_size: int, trailer_size: int) -> None:
        self._source = Source(reader)
        self.record_size = segment_size + TAG_SIZE
        self._trailer_size = trailer_size
        self._buf = bytearray(self.record_size + trailer_size + 1)
        self._view = memoryview(self._buf)
        self._filled = 0
        self.trailer = b""

    def next(self) -> tuple[memoryview, bool]:
        """Return ``(record, is_last)``; after the last record, ``trailer`` holds the held-back bytes."""
        self._filled += self._source.fill(self._view[self._filled:])
        if self._filled == len(self._buf):
            return self._view[:self.record_size], False
        body = self._filled - self._trailer_size
        if body < TAG_SIZE:
            raise EnvelopeTruncated("The envelope's end is malformed: the final segment and the signature do not "
                                    "fit in what is left (bytes were cut off, or added)")
        self.trailer = bytes(self._view[body:self._filled])
        return self._view[:body], True

    def advance(self) -> None:
        """Drop the record just returned by :meth:`next` (only after a non-last record)."""
        keep = self._filled - self.record_size
        self._buf[:keep] = self._buf[self.record_size:self._filled]
        self._filled = keep


class LengthCheck:
    """Compares the records met with a stated plaintext length, naming truncation or appended bytes."""

    def __init__(self, plaintext_length: int | None, segment_size: int) -> None:
        self.expected: tuple[int, int] | None = None  # (segments, bytes of the final record)
        if plaintext_length is not None:
            count = segment_count(plaintext_length, segment_size)
            self.expected = (count, plaintext_length - (count - 1) * segment_size + TAG_SIZE)

    def ended_inside(self, index: int) -> None:
        """The data ran out inside record ``index`` (too short for a final segment and a signature)."""
        if self.expected is not None:
            count, _ = self.expected
            if index < count:
                raise EnvelopeTruncated(f"The envelope is truncated: its header states {count} segments, the "
                                        f"data ends in segment {index + 1}")
            raise EnvelopeTampered("The envelope is longer than its header states: bytes were appended")

    def record(self, index: int, size: int, last: bool) -> None:
        if self.expected is None:
            return
        count, last_size = self.expected
        if not last:
            if index >= count - 1:
                raise EnvelopeTampered(f"The envelope is longer than its header states ({count} segments): "
                                       f"bytes were appended")
        elif index < count - 1 or (index == count - 1 and size < last_size):
            raise EnvelopeTruncated(f"The envelope is truncated: its header states {count} segments, "
                                    f"the data ends in segment {index + 1}")
        elif (index, size) != (count - 1, last_size):
            raise EnvelopeTampered("The envelope is longer than its header states: bytes were appended")


def open_segments(records: RecordReader, write: Callable[[Any], Any] | None, *, aead: Aead | None,
                  nonce_prefix: bytes, aad: bytes, hashers: list[Hasher],
                  length_check: LengthCheck) -> tuple[int, int]:
    """Hash every record; with ``aead``, check its tag and write its plaintext.

    Returns ``(plaintext bytes, segments)``. Without ``aead`` only the structure is checked.
    Plaintext is written as soon as its segment authenticates; callers must discard the output if
    this function (or the signature check after it) raises.
    """
    decrypt_into = getattr(aead, "decrypt_into", None) if aead is not None else None
    out = memoryview(bytearray(records.record_size - TAG_SIZE)) if decrypt_into is not None else None
    index, total = 0, 0
    while True:
        try:
            record, last = records.next()
        except EnvelopeTruncated:
            length_check.ended_inside(index)
            raise
        length_check.record(index, len(record), last)
        if last and len(record) == TAG_SIZE and index > 0:
            raise EnvelopeTampered("The envelope ends with an empty segment after a full one, which sealing "
                                   "never produces: bytes were appended")
        for h in hashers:
            h.update(record)
        size = len(record) - TAG_SIZE
        if aead is not None:
            nonce = segment_nonce(nonce_prefix, index, last)
            try:
                if out is not None:
                    decrypt_into(nonce, record, aad, out[:size])
                    plain: Any = out[:size]
                else:
                    plain = aead.decrypt(nonce, bytes(record), aad)
            except InvalidTag as exc:
                raise EnvelopeTampered(
                    f"Segment {index + 1} failed authentication: the envelope was altered, reordered, "
                    f"truncated or extended" + (" (or this is the wrong content key)" if index == 0 else "")
                ) from exc
            if write is not None:
                write(plain)
        total += size
        if last:
            return total, index + 1
        records.advance()
        index += 1
