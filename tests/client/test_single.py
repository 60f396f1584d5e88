"""An envelope that fits one chunk goes in one request; a lost answer is settled by running the command again."""

from __future__ import annotations

import json
import os

from sqlalchemy import func, select

from bidding import Bid, BidUpload, UploadStatus
from core.db import db
from core.storage import default_store


class Recorder:
    """WSGI middleware: remember (method, path) of every request; optionally drop the answer of one POST."""

    def __init__(self, app, drop_answer_of: str | None = None) -> None:
        self.app, self.seen, self.drop = app, [], drop_answer_of

    def __call__(self, environ, start_response):
        self.seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"]))
        if self.drop and environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"].endswith(self.drop):
            self.drop = None
            body = list(self.app(environ, lambda *_a, **_k: None))  # the server does the work ...
            del body
            raise ConnectionResetError("answer lost")  # ... and the connection drops before the answer
        return self.app(environ, start_response)


def test_a_small_envelope_is_sent_in_one_request(app, live, world, bidder_keys, make_bid, seal, run, tmp_path):
    w = world()
    key, cert = bidder_keys(w)
    envelope = tmp_path / "bid.ebe"
    assert seal(w, live.url, key, cert, make_bid(w.lots[0][1], doc_bytes=os.urandom(200 * 1024))).exit_code == 0
    port = live.server.port
    live.server.stop()
    recorder = Recorder(app)
    live.start(recorder, port)
    result = run("upload", str(envelope), "--token", w.token)
    assert result.exit_code == 0, result.output
    assert "receipt: " in result.output and f"{envelope.stat().st_size} bytes sent" in result.output
    writes = [(m, p) for m, p in recorder.seen if m in ("POST", "PUT", "DELETE")]
    assert writes == [("POST", f"/api/tenders/{w.tender_id}/lots/{w.lots[0][0]}/bids")]
    bid = db.session.scalar(select(Bid))
    assert default_store().read_bytes(bid.envelope_sha256) == envelope.read_bytes()
    assert json.loads((tmp_path / "bid.ebe.receipt.json").read_text())["bid"]["id"] == bid.public_id
    assert not (tmp_path / "bid.ebe.upload.json").exists()


def test_a_larger_envelope_still_goes_in_chunks(app, live, world, bidder_keys, make_bid, seal, run, tmp_path):
    w = world()
    key, cert = bidder_keys(w)
    envelope = tmp_path / "bid.ebe"
    assert seal(w, live.url, key, cert, make_bid(w.lots[0][1], doc_bytes=os.urandom(200 * 1024))).exit_code == 0
    port = live.server.port
    live.server.stop()
    recorder = Recorder(app)
    live.start(recorder, port)
    result = run("upload", str(envelope), "--token", w.token, "--chunk-kib", "64")
    assert result.exit_code == 0, result.output
    puts = [p for m, p in recorder.seen if m == "PUT"]
    assert len(puts) >= 3 and not any(m == "POST" and p.endswith("/bids") for m, p in recorder.seen)
    assert db.session.scalar(select(func.count()).select_from(Bid)) == 1


def test_a_lost_answer_then_the_same_command_says_the_envelope_was_taken(app, live, world, bidder_keys, make_bid,
                                                                         seal, run, tmp_path):
    w = world()
    key, cert = bidder_keys(w)
    envelope = tmp_path / "bid.ebe"
    assert seal(w, live.url, key, cert, make_bid(w.lots[0][1], doc_bytes=os.urandom(100 * 1024))).exit_code == 0
    port = live.server.port
    live.server.stop()
    live.start(Recorder(app, drop_answer_of="/bids"), port)
    result = run("upload", str(envelope), "--token", w.token, "--retries", "0")
    assert result.exit_code == 1 and "Run the same command again" in result.output
    assert db.session.scalar(select(func.count()).select_from(Bid)) == 1  # the platform took it
    again = run("upload", str(envelope), "--token", w.token)
    assert again.exit_code == 1 and "already accepted this envelope (version 1)" in again.output
    uploads = db.session.scalars(select(BidUpload)).all()
    assert [u.status for u in uploads] == [UploadStatus.FINALIZED]
