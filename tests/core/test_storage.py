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
