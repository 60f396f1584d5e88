"""Suspension at any stage and complaints, as services: what a supervisor may change, and its effects."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bidding import opening, opening_process
from bidding.models import TenderStatus
from bidding.opening_models import OpeningSession
from core.audit import AuditEvent
from core.clock import as_utc, clock, now
from core.db import db
from core.errors import DomainError
from core.identity.access import actor_for
from evaluation import award as awards
from evaluation import room
from supervision import services
from supervision.models import ComplaintStatus
from tests.evaluation.results_support import complete, sign_all
from tests.evaluation.room_support import *  # noqa: F403  (make_room and the fixtures it needs)


def _refused(code: str, fn, *args, **kwargs):
    with pytest.raises(DomainError) as exc:
        fn(*args, **kwargs)
    db.session.rollback()
    assert exc.value.code == code, exc.value.to_dict()


def test_only_supervisors_suspend(make_room):
    r = make_room(experts=5, bidders=4)
    _refused("not_supervisor", services.suspend_tender, r.host_actor, r.tender_id, "x")
    _refused("not_supervisor", services.suspend_tender, r.member_actor(0), r.tender_id, "x")
    assert db.session.get(type(r.tender), r.tender_id).hold_reason is None


def test_a_hold_stops_the_room_and_the_award_until_resumed(make_room, certify):
    r = make_room(experts=5, bidders=4)
    supervisor = actor_for(r.supervisor, "supervisor")
    services.suspend_tender(supervisor, r.tender_id, "接到举报，暂停核查")
    db.session.commit()
    _refused("already_held", services.suspend_tender, supervisor, r.tender_id, "again")
    _refused("tender_suspended", room.vote_chair, r.member_actor(0), r.evaluation_id, r.member_ids[0])
    services.resume_tender(supervisor, r.tender_id)
    db.session.commit()
    complete(r)
    sign_all(r, certify)
    services.suspend_tender(supervisor, r.tender_id, "复核评标报告")
    db.session.commit()
    _refused("suspended", awards.start_publicity, r.host_actor, r.tender_id)
    services.resume_tender(supervisor, r.tender_id)
    db.session.commit()
    awards.start_publicity(r.host_actor, r.tender_id)
    db.session.commit()
    assert r.tender.status == TenderStatus.PUBLICITY
    actions = list(db.session.scalars(select(AuditEvent.action).where(
        AuditEvent.action.in_(["supervision.suspend", "supervision.resume"])).order_by(AuditEvent.seq)))
    assert actions == ["supervision.suspend", "supervision.resume"] * 2


def test_a_hold_during_decryption_extends_the_window(make_opening, create_person):
    o = make_opening(4, mode="bidder", custodians=0)
    opening.start_decryption(o.host_actor, o.tender.id)
    db.session.commit()
    deadline = as_utc(db.session.get(OpeningSession, o.tender.id).decryption_deadline)
    supervisor = actor_for(o.supervisor, "supervisor")
    services.suspend_tender(supervisor, o.tender.id, "网络故障核查")
    db.session.commit()
    clock.travel(timedelta(minutes=40))  # past the window's end while held: nothing moves
    assert opening_process.advance(o.host_actor, o.tender.id) == 0
    db.session.commit()
    session = db.session.get(OpeningSession, o.tender.id)
    assert session.window_closed_at is None
    _refused("tender_held", opening.enter_record, o.host_actor, o.tender.id)
    services.resume_tender(supervisor, o.tender.id)
    db.session.commit()
    session = db.session.get(OpeningSession, o.tender.id)
    assert as_utc(session.decryption_deadline) >= deadline + timedelta(minutes=40)
    assert as_utc(session.decryption_deadline) > now()


def test_complaint_needs_an_answered_objection_then_runs_its_course(make_room, certify):
    r = make_room(experts=5, bidders=4)
    complete(r)
    sign_all(r, certify)
    awards.start_publicity(r.host_actor, r.tender_id)
    db.session.commit()
    bidder = r.bidder_actor(1)
    objection = awards.raise_objection(bidder, r.tender_id, "评分有误")
    db.session.commit()
    _refused("objection_pending", services.file_complaint, bidder, r.tender_id, "result", objection.id, "投诉")
    _refused("validation_failed", services.file_complaint, r.bidder_actor(2), r.tender_id, "result", objection.id,
             "not my objection")
    awards.answer_objection(r.host_actor, r.tender_id, objection.id, "评分无误")
    db.session.commit()
    complaint = services.file_complaint(bidder, r.tender_id, "result", objection.id, "对异议答复不满意",
                                        ("evidence.txt", b"facts"))
    db.session.commit()
    assert complaint.status == ComplaintStatus.FILED and complaint.attachment_sha256
    assert (complaint.accept_due - complaint.filed_at.date()).days >= 3
    supervisor = actor_for(r.supervisor, "supervisor")
    _refused("not_supervisor", services.accept_complaint, r.host_actor, complaint.id, True, "x")
    _refused("not_accepted", services.decide_complaint, supervisor, complaint.id, "dismissed", "x")
    services.accept_complaint(supervisor, complaint.id, True, "受理，审查评分汇总")
    db.session.commit()
    assert complaint.decide_due is not None and complaint.decide_due > complaint.accept_due
    _refused("validation_failed", services.decide_complaint, supervisor, complaint.id, "maybe", "x")
    services.decide_complaint(supervisor, complaint.id, "dismissed", "经审查，评分符合评标办法，投诉不成立。")
    db.session.commit()
    assert complaint.status == ComplaintStatus.DECIDED
    assert [c.id for c in services.complaints_of(r.tender_id, published_only=True)] == [complaint.id]


def test_a_late_complaint_is_refused(make_room, certify):
    r = make_room(experts=5, bidders=4)
    complete(r)
    sign_all(r, certify)
    awards.start_publicity(r.host_actor, r.tender_id)
    db.session.commit()
    objection = awards.raise_objection(r.bidder_actor(0), r.tender_id, "异议")
    db.session.commit()
    awards.answer_objection(r.host_actor, r.tender_id, objection.id, "答复")
    db.session.commit()
    clock.travel(timedelta(days=11))
    _refused("complaint_late", services.file_complaint, r.bidder_actor(0), r.tender_id, "result", objection.id, "late")
