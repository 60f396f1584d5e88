"""Amendments, questions and objections: numbering, postponement, notifications, suspension, deadlines."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import select

import bidding
from bidding.errors import DeadlinePassed, InvalidInput, RulesViolated, TransitionRefused
from bidding.models import ObjectionStatus
from core.db import db
from core.errors import Conflict, Forbidden
from core.notifications import Notification
from tests.bidding.conftest import T0, last_event, refused, staff

DAY = timedelta(days=1)


def notified(kind: str) -> list[int]:
    return sorted(n.person_id for n in db.session.scalars(select(Notification).where(Notification.kind == kind)))


@pytest.fixture
def published(frozen, create_tender, create_bidder, create_person):
    """A published tender; two organisations downloaded it (one with two bidder members), one did not."""
    tender = create_tender(publish=True)
    p1, b1 = create_bidder()
    p1b = create_person(roles=("bidder",), organisation=db.session.get(type(tender.tenderer), b1.organisation_id))
    p2, b2 = create_bidder()
    p3, b3 = create_bidder()
    for actor in (b1, b2):
        bidding.record_download(actor, tender.documents[0])
    db.session.commit()
    return {"tender": tender, "downloaders": sorted([p1.id, p1b.id, p2.id]), "b1": b1, "b2": b2, "b3": b3,
            "outsider": p3}


def test_amendments_are_numbered_and_notified_to_downloaders(published):
    tender = published["tender"]
    a1 = bidding.amend_tender(staff(tender), tender, summary="Drawing 3 replaced", affects_bids=False,
                              changes={"description": "Roads, drainage, lighting and signage."},
                              expected_version=tender.version)
    a2 = bidding.amend_tender(staff(tender), tender, summary="Typo in chapter 2", affects_bids=False,
                              expected_version=tender.version)
    assert (a1.number, a2.number) == (1, 2)
    assert a1.changes == {"description": ["Roads, drainage and lighting.", "Roads, drainage, lighting and signage."]}
    assert notified("tender.amendment") == sorted(published["downloaders"] * 2)
    subject = db.session.scalars(select(Notification.subject)).first()
    # rendered in the recipient's language: persons without a preference get the platform default, zh_CN
    assert subject == f"招标项目 {tender.code} 第 1 号澄清/修改"
    event = last_event("tender.amend")
    assert event.summary["number"] == 2 and event.summary["notified"] == 3


def test_amendment_affecting_bids_late_requires_postponement(published, frozen):
    tender = published["tender"]
    frozen.travel(11 * DAY)  # 14 days left
    err = refused(RulesViolated, bidding.amend_tender, staff(tender), tender, summary="New spec",
                  affects_bids=True, expected_version=tender.version)
    assert err.code == "postponement_required"
    assert "2026-03-28 09:00 (UTC+08:00)" in err.to_dict()["fields"]["bid_deadline_at"][0]
    too_short = T0 + 11 * DAY + 15 * DAY - timedelta(seconds=1)
    refused(RulesViolated, bidding.amend_tender, staff(tender), tender, summary="New spec", affects_bids=True,
            changes={"bid_deadline_at": too_short}, expected_version=tender.version)
    old = tender.bid_deadline_at
    new = T0 + 11 * DAY + 15 * DAY
    amendment = bidding.amend_tender(staff(tender), tender, summary="New spec", affects_bids=True,
                                     changes={"bid_deadline_at": new}, expected_version=tender.version)
    assert tender.bid_deadline_at == new and tender.opening_at == new
    assert (amendment.previous_deadline_at, amendment.new_deadline_at) == (old, new)
    body = db.session.scalar(select(Notification.body).where(Notification.kind == "tender.amendment"))
    assert "2026-03-28 09:00 (UTC+08:00)" in body


def test_clarification_not_affecting_bids_needs_no_postponement(published, frozen):
    tender = published["tender"]
    frozen.travel(20 * DAY)
    bidding.amend_tender(staff(tender), tender, summary="Site visit moved", affects_bids=False,
                         expected_version=tender.version)


def test_amendment_refusals(published, frozen, create_tender):
    tender = published["tender"]
    actor = staff(tender)
    err = refused(RulesViolated, bidding.amend_tender, actor, tender, summary="Earlier", affects_bids=False,
                  changes={"bid_deadline_at": tender.bid_deadline_at - DAY}, expected_version=tender.version)
    assert err.code == "deadline_brought_forward"
    refused(InvalidInput, bidding.amend_tender, actor, tender, summary="x", affects_bids=False,
            changes={"title": "New"}, expected_version=tender.version)
    refused(InvalidInput, bidding.amend_tender, actor, tender, summary=" ", affects_bids=False,
            expected_version=tender.version)
    refused(Conflict, bidding.amend_tender, actor, tender, summary="x", affects_bids=False, expected_version=1)
    err = refused(RulesViolated, bidding.amend_tender, actor, tender, summary="x", affects_bids=False,
                  withdraw_document_ids=[tender.documents[0].id], expected_version=tender.version)
    assert err.code == "documents_required"
    refused(Forbidden, bidding.amend_tender, published["b1"], tender, summary="x", affects_bids=False,
            expected_version=tender.version)
    draft = create_tender()
    refused(TransitionRefused, bidding.amend_tender, staff(draft), draft, summary="x", affects_bids=False,
            expected_version=draft.version)
    frozen.travel(25 * DAY)
    refused(DeadlinePassed, bidding.amend_tender, actor, tender, summary="x", affects_bids=False,
            expected_version=tender.version)


def test_amendment_issues_new_documents_and_withdraws_old(published):
    tender = published["tender"]
    old = tender.documents[0]
    new = bidding.add_document(staff(tender), tender, stream=io.BytesIO(b"revised"), filename="v2.pdf")
    assert new.published_at is None
    amendment = bidding.amend_tender(staff(tender), tender, summary="Documents revised", affects_bids=False,
                                     document_ids=[new.id], withdraw_document_ids=[old.id],
                                     expected_version=tender.version)
    assert new.amendment_id == amendment.id and new.published_at == T0 and old.is_withdrawn
    assert [d.id for d in bidding.visible_documents(tender)] == [new.id]
    refused(InvalidInput, bidding.amend_tender, staff(tender), tender, summary="again", affects_bids=False,
            document_ids=[new.id], expected_version=tender.version)


def test_question_answer_published_to_all_and_notified(published):
    tender = published["tender"]
    question = bidding.ask_question(published["b3"], tender, "  May lot 1 be accepted in sections?  ")
    assert question.text == "May lot 1 be accepted in sections?"
    assert notified("tender.question") == [tender.created_by_id]
    bidding.answer_question(staff(tender), question, "Yes, see chapter 4.")
    assert [q.answer for q in bidding.published_answers(tender)] == ["Yes, see chapter 4."]
    # every downloader and the asker's organisation (which never downloaded)
    assert notified("tender.answer") == sorted(published["downloaders"] + [published["outsider"].id])
    err = refused(Conflict, bidding.answer_question, staff(tender), question, "Again")
    assert err.code == "already_answered"


def test_questions_close_at_the_question_deadline(published, frozen):
    tender = published["tender"]
    frozen.travel(15 * DAY)  # exactly the question deadline
    err = refused(RulesViolated, bidding.ask_question, published["b1"], tender, "Late question")
    assert err.code == "question_deadline_passed"
    assert "2026-03-17 09:00 (UTC+08:00)" in err.to_dict()["fields"]["text"][0]


def test_question_refusals(published, create_tender):
    tender = published["tender"]
    refused(Forbidden, bidding.ask_question, staff(tender), tender, "Staff cannot ask")
    refused(InvalidInput, bidding.ask_question, published["b1"], tender, "   ")
    question = bidding.ask_question(published["b1"], tender, "Q?")
    db.session.commit()
    refused(Forbidden, bidding.answer_question, published["b2"], question, "A bidder cannot answer")
    draft = create_tender()
    refused(TransitionRefused, bidding.ask_question, published["b1"], draft, "On a draft")


def test_objection_suspends_until_every_one_is_answered(published):
    tender = published["tender"]
    o1 = bidding.raise_objection(published["b1"], tender, "The qualification rule excludes SMEs.")
    assert tender.is_suspended and o1.answer_due_at == T0 + 3 * DAY and o1.status == ObjectionStatus.PENDING
    assert notified("tender.objection") == [tender.created_by_id]
    o2 = bidding.raise_objection(published["b2"], tender, "Lot 2 specification names a brand.")
    bidding.answer_objection(staff(tender), o1, "The rule is removed by amendment 1.")
    assert tender.is_suspended and o1.status == ObjectionStatus.ANSWERED
    assert last_event("objection.answer").summary["suspension_lifted"] is False
    bidding.answer_objection(staff(tender), o2, "The brand is an example; equivalents are accepted.")
    assert not tender.is_suspended
    assert last_event("objection.answer").summary == {
        "tender_id": tender.id, "answer": "The brand is an example; equivalents are accepted.", "late": False,
        "suspension_lifted": True, "pending": 0}
    assert len(notified("tender.objection_answer")) == 3  # the two members of b1, the member of b2
    refused(Conflict, bidding.answer_objection, staff(tender), o2, "Twice")


def test_objection_deadline_is_ten_days_before_the_bid_deadline(published, frozen):
    tender = published["tender"]
    frozen.travel(15 * DAY + timedelta(seconds=1))  # 10 days minus one second left
    err = refused(RulesViolated, bidding.raise_objection, published["b1"], tender, "Too late")
    assert err.code == "objection_too_late"
    assert "by 2026-03-17 09:00 (UTC+08:00)" in err.to_dict()["fields"]["text"][0]


def test_objection_refusals(published):
    tender = published["tender"]
    refused(Forbidden, bidding.raise_objection, staff(tender), tender, "Staff cannot object")
    objection = bidding.raise_objection(published["b1"], tender, "Objection")
    db.session.commit()
    refused(Forbidden, bidding.answer_objection, published["b2"], objection, "Not mine to answer")


def test_late_answer_is_flagged(published, frozen):
    tender = published["tender"]
    objection = bidding.raise_objection(published["b1"], tender, "Objection")
    frozen.travel(3 * DAY + timedelta(seconds=1))
    bidding.answer_objection(staff(tender), objection, "Answer")
    assert last_event("objection.answer").summary["late"] is True
