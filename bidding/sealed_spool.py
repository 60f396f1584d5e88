"""The spool: partial uploads on disk under ``EBID_DATA_DIR/spool/bids``, and their move into the file store.

A partial upload is one file per session, appended chunk by chunk and fsynced after every chunk, so a
server restart resumes it where the client left off (its size is the truth about what was received).
A finished envelope is renamed into the content-addressed store (or copied when the store is on
another file system) and fsynced there before any receipt is signed.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from flask import current_app

from core.storage import INCOMING_PREFIX, FileStore, default_store, drop_cached_pages

READ_CHUNK = 1 << 20


def spool_dir() -> Path:
    return Path(current_app.extensions["ebid.settings"].data_dir) / "spool" / "bids"


def spool_path(upload_id: str) -> Path:
    if not upload_id.isalnum():
        raise ValueError("not an upload id")
    return spool_dir() / f"{upload_id}.part"


def received(upload_id: str) -> int:
    """Bytes on disk for the upload (0 before the first chunk)."""
    try:
        return spool_path(upload_id).stat().st_size
    except FileNotFoundError:
        return 0


def read_range(upload_id: str, offset: int, length: int) -> bytes:
    with spool_path(upload_id).open("rb") as fh:
        fh.seek(offset)
        return fh.read(length)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append(upload_id: str, data: bytes) -> int:
    """Append ``data`` and make it durable; return the new size."""
    path = spool_path(upload_id)
    created = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    if created:
        _fsync_dir(path.parent)
    return size


def discard(upload_id: str) -> None:
    spool_path(upload_id).unlink(missing_ok=True)


def open_source(upload_id: str, sha256_hex: str, store: FileStore | None = None) -> BinaryIO | None:
    """The finished bytes: the spool file, or the stored blob when an earlier finalize already moved it."""
    try:
        return spool_path(upload_id).open("rb")
    except FileNotFoundError:
        pass
    store = store or default_store()
    return store.open(sha256_hex) if store.exists(sha256_hex) else None


class Incoming:
    """A body received in one request, written as it arrives to a new file beside the store.

    A binary reader over the body's pieces (``read``, ``readinto``): every byte handed out has been
    written to the file first, so that the envelope can be verified in the same pass as it arrives
    (memory stays bounded whatever the size). The file is not fsynced: :meth:`keep` makes it durable
    once it has verified; :meth:`drop` removes it otherwise.
    """

    def __init__(self, chunks: Iterable[bytes], store: FileStore | None = None) -> None:
        store = store or default_store()
        store.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=store.root, prefix=INCOMING_PREFIX)
        self.store, self.path, self.size = store, Path(tmp), 0
        self._out = os.fdopen(fd, "wb", buffering=0)
        self._chunks = iter(chunks)
        self._left = memoryview(b"")

    def _next(self) -> bool:
        chunk = next(self._chunks, b"")
        if not chunk:
            return False
        self._out.write(chunk)
        self.size += len(chunk)
        self._left = memoryview(chunk)
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        if not self._left and not self._next():
            return 0
        n = min(len(view), len(self._left))
        view[:n], self._left = self._left[:n], self._left[n:]
        return n

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = [bytes(self._left)]
            while self._next():
                parts.append(bytes(self._left))
            self._left = memoryview(b"")
            return b"".join(parts)
        if not self._left and not self._next():
            return b""
        taken, self._left = self._left[:n], self._left[n:]
        return bytes(taken)

    def finish(self) -> int:
        """Write whatever of the body was not read yet; close the file; return the body's size."""
        while self._next():
            pass
        self._left = memoryview(b"")
        self._out.close()
        return self.size

    def keep(self, sha256_hex: str) -> Path:
        """Move the finished, verified file into the store under its SHA-256, durably, out of the page cache.

        Fsynced, renamed, directory fsynced; its pages are evicted (read again at the opening, not before).
        """
        return self.store.adopt_file(self.path, sha256_hex, drop_cached=True)

    def drop(self) -> None:
        """Remove the file (nothing if it was kept); the rest of the body is read and discarded."""
        if not self._out.closed:
            for _chunk in self._chunks:
                pass
            self._out.close()
        self.path.unlink(missing_ok=True)


def adopt(upload_id: str, sha256_hex: str, store: FileStore | None = None) -> Path:
    """Move the verified spool file into the store under its SHA-256, durably; return the stored path."""
    store = store or default_store()
    target = store.path_for(sha256_hex)
    source = spool_path(upload_id)
    if not source.exists():
        if store.exists(sha256_hex):
            return target  # a previous finalize of this upload already moved it
        raise FileNotFoundError(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        with source.open("rb") as fh:  # another file system: copy (fsynced by the store), then drop the spool
            store.put_stream(fh)
        source.unlink()
        return target
    with target.open("rb") as fh:
        os.fsync(fh.fileno())
        drop_cached_pages(fh.fileno())  # read again at the opening, not before
    _fsync_dir(target.parent)
    _fsync_dir(source.parent)
    return target
