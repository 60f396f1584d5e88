"""An upload interrupted part-way, the platform restarted, the upload resumed: the stored envelope is identical."""

from __future__ import annotations

import hashlib
import json
import os

from sqlalchemy import func, select

from bidding import Bid, BidUpload, UploadStatus
from core.db import db
from core.storage import default_store
from tests.client.conftest import FailAfter

CHUNK_KIB = 64


def test_interrupted_upload_resumes_after_a_restart_byte_identical(app, live, world, bidder_keys, make_bid, seal,
                                                                    run, tmp_path):
    w = world()
    key, cert = bidder_keys(w)
    bid = make_bid(w.lots[0][1], doc_bytes=os.urandom(900 * 1024))  # ~15 chunks of 64 KiB
    envelope = tmp_path / "bid.ebe"
    assert seal(w, live.url, key, cert, bid).exit_code == 0
    size = envelope.stat().st_size

    port = live.server.port
    live.server.stop()
    live.start(FailAfter(app, 5), port)
    result = run("upload", str(envelope), "--token", w.token, "--chunk-kib", str(CHUNK_KIB), "--retries", "1")
    assert result.exit_code == 1
    assert "Cannot reach the platform" in result.output and "run the same command again to resume" in result.output
    session = json.loads((tmp_path / "bid.ebe.upload.json").read_text())
    upload = db.session.get(BidUpload, session["upload_id"])
    assert upload.status == UploadStatus.OPEN
    assert db.session.scalar(select(Bid)) is None

    live.restart()  # a new app on the same data folder and database: the spool survived
    result = run("upload", str(envelope), "--token", w.token, "--chunk-kib", str(CHUNK_KIB))
    assert result.exit_code == 0, result.output
    assert f"resumed at byte {5 * CHUNK_KIB * 1024}" in result.output
    assert f"{size - 5 * CHUNK_KIB * 1024} bytes sent in this run" in result.output  # only the rest was sent
    bid_row = db.session.scalar(select(Bid))
    assert default_store().read_bytes(bid_row.envelope_sha256) == envelope.read_bytes()
    assert not (tmp_path / "bid.ebe.upload.json").exists()

    result = run("upload", str(envelope), "--token", w.token)  # once more: refused before sending anything
    assert result.exit_code == 1 and "already accepted this envelope (version 1)" in result.output
    assert db.session.scalar(select(func.count()).select_from(BidUpload)) == 1


def test_an_upload_left_unfinished_resumes_where_the_server_stands(app, live, world, bidder_keys, make_bid, seal, run,
                                                                   tmp_path):
    """The local session knows the upload id; the server's byte count decides where to resume."""
    w = world()
    key, cert = bidder_keys(w)
    envelope = tmp_path / "bid.ebe"
    assert seal(w, live.url, key, cert, make_bid(w.lots[0][1], doc_bytes=os.urandom(300 * 1024))).exit_code == 0
    port = live.server.port
    live.server.stop()
    live.start(FailAfter(app, 2), port)
    assert run("upload", str(envelope), "--token", w.token, "--chunk-kib", "64", "--retries", "0").exit_code == 1
    live.server.stop()
    live.start(app, port)
    result = run("upload", str(envelope), "--token", w.token, "--chunk-kib", "100")  # another chunk size: fine
    assert result.exit_code == 0, result.output
    assert f"resumed at byte {2 * 64 * 1024}" in result.output
    assert default_store().read_bytes(db.session.scalar(select(Bid)).envelope_sha256) == envelope.read_bytes()


def test_sealing_again_cancels_the_unfinished_upload_of_the_old_file(app, live, world, bidder_keys, make_bid, seal,
                                                                     run, tmp_path):
    w = world()
    key, cert = bidder_keys(w)
    envelope = tmp_path / "bid.ebe"
    bid = make_bid(w.lots[0][1], doc_bytes=os.urandom(300 * 1024))
    assert seal(w, live.url, key, cert, bid).exit_code == 0
    port = live.server.port
    live.server.stop()
    live.start(FailAfter(app, 1), port)
    assert run("upload", str(envelope), "--token", w.token, "--chunk-kib", "64", "--retries", "0").exit_code == 1
    first = json.loads((tmp_path / "bid.ebe.upload.json").read_text())["upload_id"]
    live.server.stop()
    live.start(app, port)
    assert seal(w, live.url, key, cert, bid).exit_code == 0  # new random keys: other bytes, same file name
    result = run("upload", str(envelope), "--token", w.token)
    assert result.exit_code == 0, result.output
    assert db.session.get(BidUpload, first).status == UploadStatus.CANCELLED
    assert db.session.scalar(select(Bid)).envelope_sha256 == hashlib.sha256(envelope.read_bytes()).hexdigest()
