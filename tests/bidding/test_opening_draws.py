"""Random parameters drawn at the opening from a seed committed in the transparency log."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from sqlalchemy import select

from bidding import opening_draws
from bidding.opening_draws import check_draw_entries, draw_index, draw_result
from bidding.sealed_models import LogEntry
from core.db import db
from core.errors import Forbidden
from crypto.receipt import parse_log_entry
from tests.bidding.opening_support import make_opening_fixture  # noqa: F401
from tests.bidding.sealed_support import kit_fixture  # noqa: F401

K = ["0.0025", "0.005", "0.0075", "0.01", "0.0125", "0.015"]


@pytest.mark.parametrize(("seed", "code", "name", "count"), [
    (bytes(32), "T-1", "K", 6), (bytes(range(32)), "T-1", "K", 6), (b"\xff" * 32, "ZB-2026-001", "K", 7),
    (bytes(32), "T-1", "delta", 9)])
def test_draw_index_is_the_documented_hmac(seed, code, name, count):
    expected = int.from_bytes(hmac.new(seed, f"ebid/draw/v1\n{code}\n{name}".encode(), hashlib.sha256).digest(),
                              "big") % count
    assert draw_index(seed, code, name, count) == expected


def test_draw_vectors():
    assert draw_result(bytes(32), "T-1", "K", K) == K[draw_index(bytes(32), "T-1", "K", 6)]
    results = {draw_result(i.to_bytes(32, "big"), "T-1", "K", K) for i in range(200)}
    assert results == set(K)  # every value can be drawn


def test_commit_before_reveal_and_anyone_recomputes(make_opening):
    o = make_opening(3, mode="bidder", custodians=0, evaluation_method={"random_parameters": {"K": K}})
    with pytest.raises(Forbidden):
        opening_draws.commit_draw(o.supervisor_actor, o.tender.id, "K")
    db.session.rollback()
    draw = opening_draws.commit_draw(o.host_actor, o.tender.id, "K")
    db.session.commit()
    assert draw.drawn_at is None
    assert opening_draws.verify_draw(o.tender.id, "K").ok is False  # nothing revealed yet
    draw = opening_draws.reveal_draw(o.host_actor, o.tender.id, "K")
    db.session.commit()
    assert draw.commit_index < draw.reveal_index
    assert draw.result == draw_result(bytes.fromhex(draw.seed), o.tender.code, "K", K)
    check = opening_draws.verify_draw(o.tender.id, "K")
    assert check.ok and check.result == draw.result
    entries = {e.index: parse_log_entry(e.entry) for e in db.session.scalars(
        select(LogEntry).where(LogEntry.tender_id == o.tender.id, LogEntry.kind == "draw"))}
    commit, reveal = entries[draw.commit_index], entries[draw.reveal_index]
    forged = {**reveal, "result": next(v for v in K if v != draw.result)}
    assert not check_draw_entries(o.tender.code, "K", commit, forged, draw.commit_index, draw.reveal_index).ok
    other_seed = {**reveal, "seed": "00" * 32}
    assert "does not hash" in check_draw_entries(o.tender.code, "K", commit, other_seed, draw.commit_index,
                                                 draw.reveal_index).message
    assert not check_draw_entries(o.tender.code, "K", commit, reveal, draw.reveal_index, draw.commit_index).ok


def test_a_draw_needs_the_set_fixed_in_the_tender(make_opening):
    o = make_opening(3, mode="bidder", custodians=0)
    with pytest.raises(Exception, match="fixes no set"):
        opening_draws.commit_draw(o.host_actor, o.tender.id, "K")
