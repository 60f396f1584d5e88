"""The content-addressed file store: streams and adopted files land under their SHA-256, atomically."""

from __future__ import annotations

import hashlib
import os
import tempfile

import pytest

from core.storage import FileStore


def test_put_stream_names_the_blob_by_its_hash(tmp_path):
    store = FileStore(tmp_path / "files")
    sha, size = store.put_bytes(b"sealed bid")
    assert (sha, size) == (hashlib.sha256(b"sealed bid").hexdigest(), 10)
    assert store.read_bytes(sha) == b"sealed bid" and store.verify(sha)
    with pytest.raises(ValueError, match="larger than 3 bytes"):
        store.put_stream([b"abcd"], max_size=3)
    assert not [p for p in store.root.iterdir() if p.name.startswith(".incoming-")]


def test_adopt_file_moves_a_file_hashed_while_written(tmp_path):
    store = FileStore(tmp_path / "files")
    store.root.mkdir(parents=True)
    fd, tmp = tempfile.mkstemp(dir=store.root, prefix=".opening-")
    with os.fdopen(fd, "wb") as out:
        out.write(b"plaintext zip")
    sha = hashlib.sha256(b"plaintext zip").hexdigest()
    path = store.adopt_file(tmp, sha)
    assert path == store.path_for(sha) and not os.path.exists(tmp)
    assert store.verify(sha)
    with pytest.raises(ValueError, match="not a SHA-256"):
        store.adopt_file(path, "xyz")


@pytest.mark.parametrize("drop", [False, True])
def test_adopt_file_drops_the_cached_pages_only_when_asked_and_after_the_fsync(tmp_path, monkeypatch, drop):
    calls: list[tuple] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(("fsync", fd)), real_fsync(fd))[1])
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, offset, length, advice: calls.append(
        ("fadvise", fd, offset, length, advice)), raising=False)
    monkeypatch.setattr(os, "POSIX_FADV_DONTNEED", 4, raising=False)
    store = FileStore(tmp_path / "files")
    store.root.mkdir(parents=True)
    fd, tmp = tempfile.mkstemp(dir=store.root, prefix=".incoming-")
    with os.fdopen(fd, "wb") as out:
        out.write(b"sealed envelope" * 1000)
    sha = hashlib.sha256(b"sealed envelope" * 1000).hexdigest()
    store.adopt_file(tmp, sha, drop_cached=drop)
    assert store.verify(sha)
    advice = [c for c in calls if c[0] == "fadvise"]
    if not drop:
        assert advice == []
        return
    assert len(advice) == 1 and advice[0][2:] == (0, 0, 4)  # the whole file, POSIX_FADV_DONTNEED
    file_fsync = calls.index(("fsync", advice[0][1]))
    assert file_fsync < calls.index(advice[0])  # on disk first: the advice never drops unwritten pages
