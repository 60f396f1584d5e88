"""Replacing a bid with a new version, withdrawing it, and what the receipts and the final log then say."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

from sqlalchemy import select

from bidding import Bid
from core.clock import clock
from core.db import db


def test_replace_then_withdraw_and_the_final_log(app, live, world, bidder_keys, make_bid, seal, run, tmp_path):
    w = world()
    key, cert = bidder_keys(w)
    lot_id, lot_code = w.lots[0]
    assert seal(w, live.url, key, cert, make_bid(lot_code, "12345678.00")).exit_code == 0
    assert run("upload", str(tmp_path / "bid.ebe"), "--token", w.token).exit_code == 0

    # a new version, sealed and uploaded: a replacement (修改), the log proven to have only grown
    result = seal(w, live.url, key, cert, make_bid(lot_code, "11999999.50", name="v2.zip"), out="v2.ebe")
    assert result.exit_code == 0 and "bid version 2" in result.output
    result = run("upload", str(tmp_path / "v2.ebe"), "--token", w.token)
    assert result.exit_code == 0, result.output
    assert "is a prefix of this one" in result.output
    v2 = json.loads((tmp_path / "v2.ebe.receipt.json").read_text())
    assert v2["receipt"]["body"]["bid_version"] == 2
    entry = json.loads(base64.b64decode(v2["log_entry"]))
    v1 = json.loads((tmp_path / "bid.ebe.receipt.json").read_text())
    assert entry["kind"] == "replacement"
    assert entry["replaces_sha256"] == v1["receipt"]["body"]["envelope_sha256"]

    result = run("status", "--server", live.url, "--token", w.token, "--tender", str(w.tender_id))
    assert result.exit_code == 0, result.output
    assert f"lot {lot_code} (id {lot_id}): version 2 current" in result.output
    assert "version 1 replaced" in result.output and "next version to seal: 3" in result.output

    # the old envelope cannot be sent again: the client says what to do before uploading anything
    result = run("upload", str(tmp_path / "bid.ebe"), "--token", w.token)
    assert result.exit_code == 1 and "already accepted this envelope (version 1)" in result.output

    # withdrawal (撤回): logged, checked against the pinned log key and against the earlier tree heads
    result = run("withdraw", "--server", live.url, "--token", w.token, "--tender", str(w.tender_id),
                 "--lot", str(lot_id))
    assert result.exit_code == 0, result.output
    assert "withdrawal of version 2 is entry" in result.output and "the log only grew" in result.output
    rows = db.session.scalars(select(Bid).order_by(Bid.version)).all()
    assert [(b.version, b.state) for b in rows] == [(1, "replaced"), (2, "withdrawn")]
    result = run("withdraw", "--server", live.url, "--token", w.token, "--tender", str(w.tender_id),
                 "--lot", str(lot_id))
    assert result.exit_code == 1 and "no current bid" in result.output

    clock.travel(timedelta(days=26))
    result = run("verify-receipt", str(tmp_path / "bid.ebe.receipt.json"), "--token", w.token)
    assert result.exit_code == 0, result.output
    assert "no bid of yours for lot" in result.output and "records its withdrawal" in result.output  # v1 replaced, v2 withdrawn: nothing of ours is opened
    result = run("verify-receipt", str(tmp_path / "v2.ebe.receipt.json"), "--token", w.token)
    assert result.exit_code == 0 and "in the final log" in result.output


def test_replacement_listed_in_the_opening_instead_of_the_first_version(app, live, world, bidder_keys, make_bid,
                                                                        seal, run, tmp_path):
    w = world()
    key, cert = bidder_keys(w)
    lot_code = w.lots[1][1]
    assert seal(w, live.url, key, cert, make_bid(lot_code), lot_index=1).exit_code == 0
    assert run("upload", str(tmp_path / "bid.ebe"), "--token", w.token).exit_code == 0
    assert seal(w, live.url, key, cert, make_bid(lot_code, "400000.00", name="v2.zip"), lot_index=1,
                out="v2.ebe").exit_code == 0
    assert run("upload", str(tmp_path / "v2.ebe"), "--token", w.token).exit_code == 0
    clock.travel(timedelta(days=26))
    result = run("verify-receipt", str(tmp_path / "bid.ebe.receipt.json"), "--token", w.token)
    assert result.exit_code == 0, result.output
    assert f"version 2 of your bid for lot {lot_code} is to be opened, not this version 1" in result.output
    result = run("verify-receipt", str(tmp_path / "v2.ebe.receipt.json"), "--token", w.token)
    assert "this envelope (version 2) is among the bids to open" in result.output
