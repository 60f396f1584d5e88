"""Content-addressed file storage (存储): files named by their SHA-256, written and fsynced."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO, TypeVar

from flask import current_app

T = TypeVar("T")

CHUNK = 1 << 20
INCOMING_PREFIX = ".incoming-"  # files being written beside the store, renamed in once complete


class FileStore:
    """Stores blobs under ``root/ab/cdef...`` by SHA-256; writes are atomic and durable."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path_for(self, sha256_hex: str) -> Path:
        if len(sha256_hex) != 64 or any(c not in "0123456789abcdef" for c in sha256_hex):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / sha256_hex[:2] / sha256_hex

    def put_stream(self, stream: BinaryIO | Iterable[bytes], max_size: int | None = None) -> tuple[str, int]:
        """Store a stream; return (sha256 hex, size). Raises ValueError past ``max_size`` bytes."""
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=INCOMING_PREFIX)
        try:
            with os.fdopen(fd, "wb") as out:
                chunks = iter(lambda: stream.read(CHUNK), b"") if hasattr(stream, "read") else stream
                for chunk in chunks:
                    size += len(chunk)
                    if max_size is not None and size > max_size:
                        raise ValueError(f"file larger than {max_size} bytes")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha = digest.hexdigest()
            final = self.path_for(sha)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
            _fsync_dir(final.parent)
            return sha, size
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def adopt_file(self, path: Path | str, sha256_hex: str, *, drop_cached: bool = False) -> Path:
        """Move a file the caller wrote (and hashed while writing) into the store under ``sha256_hex``, durably.

        The file must be in the store's file system (e.g. made with ``tempfile.mkstemp(dir=store.root)``); an
        existing blob of the same hash is kept and the file dropped. ``drop_cached``: once on disk, the file's
        pages leave the page cache (:func:`drop_cached_pages`).
        """
        final = self.path_for(sha256_hex)
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())
            if drop_cached:
                drop_cached_pages(fh.fileno())
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, final)
        _fsync_dir(final.parent)
        return final

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        return self.put_stream([data])

    def open(self, sha256_hex: str) -> BinaryIO:
        return self.path_for(sha256_hex).open("rb")

    def read_bytes(self, sha256_hex: str) -> bytes:
        return self.path_for(sha256_hex).read_bytes()

    def exists(self, sha256_hex: str) -> bool:
        return self.path_for(sha256_hex).exists()

    def verify(self, sha256_hex: str) -> bool:
        """Re-hash the stored file and compare with its name."""
        digest = hashlib.sha256()
        with self.open(sha256_hex) as fh:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                digest.update(chunk)
        return digest.hexdigest() == sha256_hex


def drop_cached_pages(fd: int) -> None:
    """Evict a file's pages from the page cache once it is on disk (fsynced by the caller).

    For blobs written once and read rarely, such as sealed envelopes (read again at the opening and by
    integrity checks): a deadline surge writes gigabytes of them, and keeping them cached would evict the
    pages the database needs and make every later write pay for reclaiming the cache (measured on the
    benchmark host: a 5 MiB write took 12 ms of CPU instead of 0.85 ms once about 750 MiB had been
    written and kept cached). Advice only: where the platform has no ``posix_fadvise``, nothing happens.
    """
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def default_store() -> FileStore:
    """The store of the running app (under ``EBID_DATA_DIR/files``)."""
    return FileStore(current_app.extensions["ebid.settings"].storage_dir)


def write_atomically(path: Path, write: Callable[[BinaryIO], T]) -> T:
    """Write a file so that readers never see it half-written: a temporary file beside it, fsynced,
    then renamed over ``path``; ``write(handle)``'s result is returned."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            result = write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return result
