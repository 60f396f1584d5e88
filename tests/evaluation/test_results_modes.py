"""Award modes and methods end to end: 评定分离 (the decision committee picks by price, vote, vote then lot),
the GP low-price method with the SME deduction, and a lot left with too little competition."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from bidding import translog
from bidding.models import TenderStatus
from core.db import db
from core.errors import DomainError
from crypto.receipt import parse_log_entry
from evaluation import award as awards
from evaluation import outcome, room
from evaluation.result_models import Award
from tests.evaluation.results_support import complete, sign_all, to_summary
from tests.evaluation.room_support import *  # noqa: F403  (make_room and the fixtures it needs)

PRICES = ["950000.00", "940000.00", "930000.00", "920000.00"]


def _separated(pick: str) -> dict:
    return {"method": "comprehensive", "benchmark": "mean",
            "award": {"mode": "separated", "separated_count": 3, "pick": pick}}


def _to_signed(r, certify) -> list[dict]:
    complete(r)
    sign_all(r, certify)
    return outcome.result_of(r.evaluation_id).lots[0]["candidates"]


def test_separated_by_price_picks_the_lowest_candidate(make_room, certify):
    r = make_room(experts=5, bidders=4, failed=0, prices=PRICES, evaluation_method=_separated("price"))
    candidates = _to_signed(r, certify)
    assert len(candidates) == 3 and all(c["rank"] is None for c in candidates)
    assert [c["bidder"] for c in candidates] == sorted(c["bidder"] for c in candidates)  # unranked: by name
    lot_id = r.tender.lots[0].id
    with pytest.raises(DomainError) as exc:
        awards.start_publicity(r.host_actor, r.tender_id)
    assert exc.value.code == "pick_missing"
    db.session.rollback()
    picked = awards.pick_separated(r.host_actor, r.tender_id, lot_id)
    db.session.commit()
    lowest = min(candidates, key=lambda c: Decimal(c["price"]))
    assert picked.bid_opening_id == lowest["bid_opening_id"] and picked.notified_at is None
    publicity = awards.start_publicity(r.host_actor, r.tender_id)
    db.session.commit()
    assert publicity.candidates[0]["chosen"] == lowest["bid_opening_id"]


def test_separated_by_vote_refuses_bad_votes_and_ties(make_room, certify):
    r = make_room(experts=5, bidders=4, failed=0, prices=PRICES, evaluation_method=_separated("vote"))
    candidates = _to_signed(r, certify)
    lot_id = r.tender.lots[0].id
    ids = [c["bid_opening_id"] for c in candidates]
    for votes, code in (({}, "validation_failed"), ({"999": 3}, "validation_failed"),
                        ({str(ids[0]): "x"}, "validation_failed"),
                        ({str(ids[0]): 2, str(ids[1]): 2, str(ids[2]): 1}, "vote_tie")):
        with pytest.raises(DomainError) as exc:
            awards.pick_separated(r.host_actor, r.tender_id, lot_id, votes)
        assert exc.value.code == code, votes
        db.session.rollback()
    assert db.session.scalar(select(Award.id)) is None
    picked = awards.pick_separated(r.host_actor, r.tender_id, lot_id, {str(ids[1]): 4, str(ids[0]): 1})
    db.session.commit()
    assert picked.bid_opening_id == ids[1] and picked.decision["votes"] == {str(ids[0]): 1, str(ids[1]): 4}


def test_vote_then_lot_settles_a_tie_with_a_logged_commitment(make_room, certify):
    r = make_room(experts=5, bidders=4, failed=0, prices=PRICES, evaluation_method=_separated("vote_then_lot"))
    candidates = _to_signed(r, certify)
    ids = [c["bid_opening_id"] for c in candidates]
    picked = awards.pick_separated(r.host_actor, r.tender_id, r.tender.lots[0].id,
                                   {str(ids[0]): 2, str(ids[1]): 2, str(ids[2]): 1})
    db.session.commit()
    lot = picked.decision["lot"]
    assert picked.bid_opening_id in ids[:2] and sorted(lot["tied"]) == sorted(ids[:2])
    entries = [parse_log_entry(e.entry) for e in translog.entries(r.tender_id, 0, translog.size_of(r.tender_id))]
    commits = [i for i, e in enumerate(entries) if e.get("kind") == "award" and e.get("event") == "lot-commit"]
    reveals = [i for i, e in enumerate(entries) if e.get("kind") == "award" and e.get("event") == "lot-reveal"]
    assert commits and reveals and commits[0] < reveals[0]
    import hashlib
    assert hashlib.sha256(bytes.fromhex(lot["seed"])).hexdigest() == entries[commits[0]]["commitment"]


def test_gp_low_price_with_sme_deduction(make_room, certify):
    method = {"method": "gp_low_price", "weights": {"price": 30, "technical": 70}, "gp": {"sme_deduction": "0.10"}}
    r = make_room(experts=5, bidders=4, failed=0, prices=["900000.00", "960000.00", "950000.00", "970000.00"],
                  evaluation_method=method)
    sme = r.bidder_of(r.bid_ids[1]).org
    sme.is_sme = True
    db.session.commit()
    complete(r)
    lot = outcome.result_of(r.evaluation_id).lots[0]
    rows = {b["bid_opening_id"]: b for b in lot["bids"]}
    # the SME's 960000.00 counts as 864000.00, the lowest: B = 864000.00, its price score is the full 30
    assert rows[r.bid_ids[1]]["evaluated_price"] == "864000.00"
    assert Decimal(rows[r.bid_ids[1]]["price_score"]) == Decimal("30")
    # 864000 / 900000 × 30 = 28.80
    assert Decimal(rows[r.bid_ids[0]]["price_score"]) == Decimal("28.80")


def test_too_little_competition_needs_the_committee(make_room, certify):
    r = make_room(experts=5, bidders=3, failed=1)  # 2 valid bids
    to_summary(r)
    room.write_summary(r.member_actor(0), r.evaluation_id, "s")
    db.session.commit()
    with pytest.raises(DomainError) as exc:
        room.complete_evaluation(r.member_actor(0), r.evaluation_id)
    assert exc.value.code == "competition_undecided"
    db.session.rollback()
    lot_id = r.tender.lots[0].id
    with pytest.raises(DomainError):
        outcome.decide_competition(r.member_actor(1), r.evaluation_id, lot_id, "reject_all", "x")  # not the chair
    db.session.rollback()
    outcome.decide_competition(r.member_actor(0), r.evaluation_id, lot_id, "reject_all", "有效投标不足3家,缺乏竞争")
    db.session.commit()
    room.complete_evaluation(r.member_actor(0), r.evaluation_id)
    db.session.commit()
    lot = outcome.result_of(r.evaluation_id).lots[0]
    assert lot["valid_count"] == 0 and lot["candidates"] == [] and lot["competition"] == "reject_all"
    sign_all(r, certify)
    awards.start_publicity(r.host_actor, r.tender_id)  # nothing to publish: the tender fails (流标)
    db.session.commit()
    assert r.tender.status == TenderStatus.FAILED
