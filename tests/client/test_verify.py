"""Verification catches a platform that lies: dropped or swapped bids, a rewritten log, a forked tree head."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest

from bidding.receipts import log_key
from core.clock import clock
from crypto.receipt import log_entry, sign_tree_head
from ebid.client.verify import VerificationFailed, check_opening, current_bids

T, A, B = "T-1", "a" * 64, "b" * 64
H1, H2, H3 = "1" * 64, "2" * 64, "3" * 64


def entry(kind: str, **fields) -> dict:
    return json.loads(log_entry(kind, tender=T, **fields))


def sub(bidder: str, version: int, sha: str, kind: str = "submission", **extra) -> dict:
    return entry(kind, lot="01", bidder=bidder, bid_version=version, envelope_sha256=sha, envelope_size=10,
                 at_ms=1, **extra)


def opening(*bids) -> dict:
    listed = [{"lot": "01", "bidder": b, "bid_version": v, "envelope_sha256": h} for b, v, h in bids]
    return entry("opening", tree_size=9, bids=sorted(listed, key=lambda x: (x["lot"], x["bidder"])), at_ms=2)


HISTORY = [sub(A, 1, H1), sub(B, 1, H2), sub(A, 2, H3, "replacement", replaces_sha256=H1),
           entry("withdrawal", lot="01", bidder=B, bid_version=1, at_ms=1, reason="bidder"),
           entry("key-event", event="padding", key_id="c" * 64, at_ms=1)]


def test_replay_leaves_the_latest_version_of_each_bidder_not_withdrawn():
    assert current_bids(HISTORY) == {("01", A): {"lot": "01", "bidder": A, "bid_version": 2, "envelope_sha256": H3}}


@pytest.mark.parametrize(("listed", "ok"), [
    ([(A, 2, H3)], True),
    ([], False),                       # a bid dropped
    ([(A, 1, H1)], False),             # the replaced version opened instead
    ([(A, 2, H3), (B, 1, H2)], False),  # a withdrawn bid opened anyway
    ([(A, 2, H2)], False),             # another envelope under the right version
])
def test_the_opening_must_list_exactly_what_the_log_leaves(listed, ok):
    bodies = [*HISTORY, opening(*listed)]
    if ok:
        assert set(check_opening(bodies)) == {("01", A)}
    else:
        with pytest.raises(VerificationFailed, match="dropped, added or swapped"):
            check_opening(bodies)


class RewriteEntries:
    """A platform showing a doctored log: the first submission entry's hash is changed in /log/entries."""

    def __init__(self, app) -> None:
        self.app = app

    def __call__(self, environ, start_response):
        if not environ["PATH_INFO"].endswith("/log/entries"):
            return self.app(environ, start_response)
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
        body = json.loads(b"".join(self.app(environ, capture)))
        for row in body:
            if row["kind"] == "submission":
                doctored = dict(row["body"], envelope_sha256="f" * 64)
                row["entry"] = base64.b64encode(log_entry(**{k: v for k, v in doctored.items() if k != "type"})).decode()
                break
        data = json.dumps(body).encode()
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        start_response(captured["status"], [*headers, ("Content-Length", str(len(data)))])
        return [data]


def test_a_doctored_final_log_is_detected(app, live, world, bidder_keys, make_bid, seal, run, tmp_path):
    w = world()
    key, cert = bidder_keys(w)
    assert seal(w, live.url, key, cert, make_bid(w.lots[0][1])).exit_code == 0
    assert run("upload", str(tmp_path / "bid.ebe"), "--token", w.token).exit_code == 0
    clock.travel(timedelta(days=26))
    port = live.server.port
    live.server.stop()
    live.start(RewriteEntries(app), port)
    result = run("verify-receipt", str(tmp_path / "bid.ebe.receipt.json"), "--token", w.token)
    assert result.exit_code == 1 and "Verification FAILED" in result.output
    assert "do not rebuild the final tree head" in result.output


def test_a_forked_tree_head_is_detected(app, live, world, bidder_keys, make_bid, seal, run, tmp_path):
    """Two different heads of the same size, both signed, are proof of a forked log (kept as evidence)."""
    w = world()
    key, cert = bidder_keys(w)
    assert seal(w, live.url, key, cert, make_bid(w.lots[0][1])).exit_code == 0
    assert run("upload", str(tmp_path / "bid.ebe"), "--token", w.token).exit_code == 0
    heads_file = next(run.home.glob("servers/*/tenders/*/heads.json"))
    heads = json.loads(heads_file.read_text())
    assert len(heads) == 1
    # a second signed head of the same size with another root, as a forking platform would have to sign
    body = heads[0]["body"]
    forged = sign_tree_head(log_key(), log_id=body["log_id"], tree_size=body["tree_size"],
                            root_hash=bytes.fromhex("e" * 64), timestamp_ms=body["timestamp_ms"])
    heads[0] = forged.as_dict()
    heads_file.write_text(json.dumps(heads))
    result = run("verify-receipt", str(tmp_path / "bid.ebe.receipt.json"), "--token", w.token)
    assert result.exit_code == 1 and "two different tree heads of size" in result.output
