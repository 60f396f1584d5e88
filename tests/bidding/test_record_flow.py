"""The opening record: rows from the decrypted bids, bond status, confirmations, objections, silence."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bidding import opening, record_service
from bidding.errors import NotABidder
from bidding.opening_models import OpeningPhase
from bidding.opening_record import RecordNotReady, rows_digest
from bidding.record_models import RecordStatus, ResponseKind
from bidding.record_service import RecordRefused
from core.audit import AuditEvent
from core.clock import clock
from core.db import db
from core.errors import Forbidden, ValidationFailed
from core.storage import default_store
from tests.bidding.opening_support import make_opening_fixture  # noqa: F401
from tests.bidding.record_support import decrypted_fixture  # noqa: F401
from tests.bidding.sealed_support import kit_fixture  # noqa: F401


def _actions(prefix: str) -> list[str]:
    return [a for a in db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)) if a.startswith(prefix)]


def _build(d, minutes=15):
    record = record_service.build_record(d.o.host_actor, d.tender_id, window_minutes=minutes)
    db.session.commit()
    return record


def test_rows_come_from_bid_json_with_bond_and_decryption_results(decrypted):
    d = decrypted
    record = _build(d)
    assert opening.get_session(d.tender_id).phase == OpeningPhase.RECORD
    by_uscc = {r["uscc"]: r for r in record.rows}
    b0, b1, b2 = d.o.bidders
    assert by_uscc[b0.org.uscc]["price"] == d.o.prices[b0.org.id]
    assert by_uscc[b1.org.uscc]["price"] == d.o.prices[b1.org.id]
    assert by_uscc[b0.org.uscc]["duration_days"] == 365 and by_uscc[b0.org.uscc]["quality"] == "合格"
    assert by_uscc[b0.org.uscc]["project_manager"] == {"name": "张伟", "certificate_no": "鲁137b0"}
    assert by_uscc[b0.org.uscc]["decryption"] == {"result": "decrypted", "method": "bidder"}
    failed = by_uscc[b2.org.uscc]
    assert failed["price"] is None
    assert failed["decryption"] == {"result": "failed", "cause": "bidder", "outcome": "revoked", "reason": "key lost"}
    assert (by_uscc[b0.org.uscc]["bond"]["kind"], by_uscc[b0.org.uscc]["bond"]["passed"]) == ("waiver", True)
    assert (by_uscc[b1.org.uscc]["bond"]["kind"], by_uscc[b1.org.uscc]["bond"]["passed"]) == ("cash_bond", True)
    none = by_uscc[b2.org.uscc]["bond"]
    assert (none["kind"], none["passed"], none["required"]) == ("none", False, True)
    assert "requires a bond" in none["reasons"][0]
    assert record.sha256 == rows_digest(record.rows)
    assert record.extras["handoff"]["ok"] is True and record.extras["final_head"]["size"] >= 4
    assert _actions("opening_record.") == ["opening_record.built"]


def test_only_the_host_builds_and_only_once(decrypted):
    d = decrypted
    with pytest.raises(Forbidden):
        record_service.build_record(d.o.supervisor_actor, d.tender_id)
    db.session.rollback()
    _build(d)
    with pytest.raises(RecordRefused, match="already"):
        record_service.build_record(d.o.host_actor, d.tender_id)


def test_window_must_be_5_to_60_minutes(decrypted):
    with pytest.raises(ValidationFailed) as info:
        record_service.build_record(decrypted.o.host_actor, decrypted.tender_id, window_minutes=2)
    assert "from 5 to 60" in info.value.to_dict()["message"]


def test_not_built_while_a_failure_cause_is_undecided(make_opening):
    o = make_opening(3, mode="bidder", custodians=0)
    opening.start_decryption(o.host_actor, o.tender.id)
    db.session.commit()
    clock.travel(timedelta(minutes=31))
    from bidding import opening_process
    opening_process.advance_all(o.host_actor)
    with pytest.raises(RecordNotReady) as info:
        record_service.build_record(o.host_actor, o.tender.id)
    assert "decide its cause first" in info.value.to_dict()["message"]


def test_confirm_object_answer_and_silence_at_the_window_end(decrypted):
    d = decrypted
    record = _build(d)
    b0, b1, b2 = d.o.bidders
    record_service.confirm(b0.actor, d.tender_id)
    db.session.commit()
    with pytest.raises(RecordRefused, match="already answered"):
        record_service.confirm(b0.actor, d.tender_id)
    db.session.rollback()
    with pytest.raises(RecordRefused, match="confirmation is final"):
        record_service.raise_objection(b0.actor, d.tender_id, "changed my mind")
    db.session.rollback()
    objection = record_service.raise_objection(b2.actor, d.tender_id, "Our key was not lost: the CA failed.",
                                               attachment=("ca-notice.pdf", b"%PDF ca notice"))
    db.session.commit()
    assert default_store().read_bytes(objection.attachment_sha256) == b"%PDF ca notice"
    with pytest.raises(NotABidder):
        record_service.confirm(d.o.host_actor, d.tender_id)
    db.session.rollback()
    with pytest.raises(Forbidden):
        record_service.answer_objection(b0.actor, d.tender_id, objection.id, "no")
    db.session.rollback()
    clock.travel(timedelta(minutes=15))
    with pytest.raises(RecordRefused, match="window"):
        record_service.confirm(b1.actor, d.tender_id)
    db.session.rollback()
    record = record_service.tick(d.tender_id)  # the window's end: b1 is silent
    db.session.commit()
    kinds = {r.organisation_id: r.kind for r in record.responses}
    assert kinds == {b0.org.id: ResponseKind.CONFIRMED, b1.org.id: ResponseKind.SILENT,
                     b2.org.id: ResponseKind.OBJECTED}
    assert next(r for r in record.responses if r.kind == ResponseKind.SILENT).person_id is None
    assert record.status == RecordStatus.ANSWERING and record.pdf_sha256 is None  # the objection awaits its answer
    record_service.tick(d.tender_id)  # idempotent
    db.session.commit()
    assert len(record.responses) == 3
    record_service.answer_objection(d.o.host_actor, d.tender_id, objection.id,
                                    "The CA's notice is recorded; the supervisor reviews the cause.")
    db.session.commit()
    record = record_service.get_record(d.tender_id)
    assert record.status == RecordStatus.SIGNING and record.pdf_sha256 == record.prepared_sha256
    assert _actions("opening_record.") == [
        "opening_record.built", "opening_record.confirmed", "opening_record.objection",
        "opening_record.window_closed", "opening_record.answered", "opening_record.prepared"]


def test_window_closes_early_when_every_bidder_confirmed(decrypted):
    d = decrypted
    _build(d)
    for b in d.o.bidders:
        record_service.confirm(b.actor, d.tender_id)
        db.session.commit()
    record = record_service.get_record(d.tender_id)
    assert record.status == RecordStatus.SIGNING
    assert {r.kind for r in record.responses} == {ResponseKind.CONFIRMED}


def test_hall_events_for_each_step(decrypted, monkeypatch):
    sent = []
    monkeypatch.setattr("bidding.hall_events.publish", lambda event, data, **kw: sent.append((event, data)))
    d = decrypted
    _build(d)
    record_service.confirm(d.o.bidders[0].actor, d.tender_id)
    db.session.commit()
    events = [data["event"] for event, data in sent if event == "hall.record"]
    assert events == ["built", "confirmed"]
