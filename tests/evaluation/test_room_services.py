"""Scoring room services: rights, stages, sheets, chair, clarifications, disputes, summary, suspension, trails."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from bidding import translog
from bidding.models import Tender, TenderStatus
from core.clock import clock
from core.db import db
from core.errors import Conflict, Forbidden, NotFound, RuleViolation, ValidationFailed
from core.notifications import Notification
from evaluation import room
from evaluation.pool_models import DrawRequest, DrawStatus
from evaluation.room_errors import (
    NotChair,
    NotInRoom,
    ReadOnly,
    RoomSuspended,
    StaleRevision,
    TenderSuspended,
)
from evaluation.room_models import ClarificationStatus, DisputeStatus, EvaluationStatus, ScoreSheet
from tests.evaluation.room_support import *  # noqa: F403
from tests.evaluation.room_support import FULL_SHEET, committee_events, room_actions, room_snapshot


@pytest.fixture
def sent(monkeypatch):
    """The realtime events the room queued: (event, data, room)."""
    events: list[tuple[str, dict, str | None]] = []
    monkeypatch.setattr("evaluation.room_flow.publish",
                        lambda event, data, room=None, namespace="/": events.append((event, data, room)))
    return events


def refused(exc_type, func, *args, **kwargs):
    """Call expecting ``exc_type``; nothing stored (rows, sheets, trail, log) changes."""
    db.session.commit()
    before = room_snapshot()
    with pytest.raises(exc_type) as info:
        func(*args, **kwargs)
    db.session.rollback()
    assert room_snapshot() == before
    return info.value


def test_start_requires_published_record_complete_committee_and_a_manager(make_room):
    r = make_room(experts=5, bidders=3, signed_in=False)
    ev = r.evaluation
    assert ev.status == EvaluationStatus.SIGNING_IN and db.session.get(Tender, r.tender_id).status == \
        TenderStatus.EVALUATION
    assert [c["code"] for c in ev.criteria][:3] == ["F1", "F2", "Q1"] and str(ev.deviation_threshold) == "0.3000"
    assert refused(Conflict, room.start_evaluation, r.host_actor, r.tender_id).code == "already_started"
    assert refused(NotFound, room.start_evaluation, r.host_actor, 999999)
    assert room_actions(ev.id) == ["evaluation.started"]
    assert [e["event"] for e in committee_events(r.tender_id)] == ["started"]


def test_start_refused_without_record_or_committee_or_rights(make_opening, create_person):
    o = make_opening(3, mode="bidder", custodians=0)
    e = refused(RuleViolation, room.start_evaluation, o.host_actor, o.tender.id)
    assert e.code == "record_not_published"
    assert refused(Forbidden, room.start_evaluation, o.bidders[0].actor, o.tender.id).code == "not_tender_manager"


def test_committee_must_be_complete_and_the_starter_a_manager(make_room):
    o, _ = make_room(experts=5, start=False)
    request = db.session.scalar(select(DrawRequest).where(DrawRequest.tender_id == o.tender.id))
    request.status = DrawStatus.SHORT
    db.session.commit()
    assert refused(RuleViolation, room.start_evaluation, o.host_actor, o.tender.id).code == "committee_incomplete"
    request.status = DrawStatus.COMPLETE
    db.session.commit()
    assert refused(Forbidden, room.start_evaluation, o.bidders[0].actor, o.tender.id).code == "not_tender_manager"
    assert refused(Forbidden, room.start_evaluation, o.supervisor_actor, o.tender.id).code == "not_tender_manager"
    assert room.start_evaluation(o.host_actor, o.tender.id).tender_id == o.tender.id


def test_scoring_starts_once_every_seat_signed_in(make_room, sent):
    r = make_room(experts=5, bidders=3, signed_in=False)
    r.sign_in(0, 1, 2, 3)
    assert r.evaluation.status == EvaluationStatus.SIGNING_IN
    assert refused(RuleViolation, room.save_sheet, r.member_actor(0), r.evaluation_id, r.bid_ids[0],
                   {"T1": "5"}).code == "wrong_stage"
    assert refused(NotInRoom, room.vote_chair, r.member_actor(4), r.evaluation_id, r.member_ids[0])
    r.sign_in(4)
    assert r.evaluation.status == EvaluationStatus.SCORING
    assert [e for e, *_ in sent].count("room.members") == 3 and ("room.status" in [e for e, *_ in sent])
    assert room_actions(r.evaluation_id) == ["evaluation.started", "evaluation.scoring"]


def test_draft_autosave_merges_and_bumps_revision_without_audit(make_room, sent):
    r = make_room()
    actor, bid = r.member_actor(0), r.bid_ids[0]
    sheet = room.save_sheet(actor, r.evaluation_id, bid, {"T1": "7.5", "Q1": "pass"})
    db.session.commit()
    assert sheet.revision == 1
    sheet = room.save_sheet(actor, r.evaluation_id, bid, {"T2": "3", "Q1": ""}, {"T1": "strong plan"}, revision=1)
    db.session.commit()
    assert (sheet.values, sheet.comments, sheet.revision) == ({"T1": "7.5", "T2": "3"}, {"T1": "strong plan"}, 2)
    assert refused(StaleRevision, room.save_sheet, actor, r.evaluation_id, bid, {"T3": "1"}, revision=1)
    assert room_actions(r.evaluation_id) == ["evaluation.started", "evaluation.scoring"]
    progress = [d for e, d, _ in sent if e == "room.progress"]
    assert progress[-1] == {"evaluation_id": r.evaluation_id, "member_id": r.member_ids[0], "bid_opening_id": bid,
                            "filled": 2, "total": 11, "submitted": False, "at": progress[-1]["at"]}


def test_out_of_range_score_is_refused_with_the_range_and_nothing_changes(make_room):
    r = make_room()
    actor, bid = r.member_actor(0), r.bid_ids[0]
    room.save_sheet(actor, r.evaluation_id, bid, {"T1": "7"})
    db.session.commit()
    error = refused(ValidationFailed, room.save_sheet, actor, r.evaluation_id, bid, {"T2": "3", "T1": "12.5"})
    assert "from 0 to 12" in error.to_dict()["message"] and "T1" in error.to_dict()["message"]
    assert "T1" in error.to_dict()["fields"]
    refused(ValidationFailed, room.save_sheet, actor, r.evaluation_id, bid, {"T2": "-1"})
    refused(ValidationFailed, room.save_sheet, actor, r.evaluation_id, bid, {"Q1": "maybe"})
    refused(ValidationFailed, room.save_sheet, actor, r.evaluation_id, bid, {"ZZ": "1"})
    assert refused(RuleViolation, room.save_sheet, actor, r.evaluation_id, r.failed_bid_ids[0],
                   {"T1": "1"}).code == "bid_not_evaluated"
    assert db.session.scalar(select(ScoreSheet)).values == {"T1": "7"}


def test_submit_needs_a_complete_sheet_and_reasons_for_fail(make_room, sent):
    r = make_room()
    actor, bid = r.member_actor(0), r.bid_ids[0]
    assert refused(RuleViolation, room.submit_sheet, actor, r.evaluation_id, bid).code == "nothing_to_submit"
    room.save_sheet(actor, r.evaluation_id, bid, {**FULL_SHEET, "T4": ""})
    db.session.commit()
    e = refused(RuleViolation, room.submit_sheet, actor, r.evaluation_id, bid)
    assert e.code == "incomplete" and "T4" in e.to_dict()["message"]
    room.save_sheet(actor, r.evaluation_id, bid, {"T4": "4", "R2": "fail"})
    db.session.commit()
    assert refused(RuleViolation, room.submit_sheet, actor, r.evaluation_id, bid).code == "reason_required"
    room.save_sheet(actor, r.evaluation_id, bid, {}, {"R2": "quality below the standard"})
    sheet = room.submit_sheet(actor, r.evaluation_id, bid)
    db.session.commit()
    assert sheet.submitted_at is not None
    assert refused(RuleViolation, room.save_sheet, actor, r.evaluation_id, bid, {"T1": "1"}).code == "submitted"
    assert refused(RuleViolation, room.submit_sheet, actor, r.evaluation_id, bid).code == "nothing_to_submit"
    assert room_actions(r.evaluation_id)[-1] == "evaluation.sheet_submitted"
    last = committee_events(r.tender_id)[-1]
    assert (last["event"], last["member"], last["bid"], len(last["sha256"])) == \
        ("sheet-submitted", str(r.member_ids[0]), str(bid), 64)
    assert not [d for e, d, _ in sent if e == "room.sheet" and d["member_id"] != r.member_ids[0]]


def test_submitted_sheets_go_only_to_members_who_submitted_too_and_deviation_warns(make_room, sent):
    r = make_room(experts=5)
    bid = r.bid_ids[0]
    r.submit_all(members=[0, 1])
    persons = {i: r.experts[i].id for i in range(5)}
    sheets = [(d["member_id"], to) for e, d, to in sent if e == "room.sheet" and to.startswith("person:")]
    assert sorted(sheets) == sorted([(r.member_ids[0], f"person:{persons[1]}"), (r.member_ids[1], f"person:{persons[0]}")]
                                    * len(r.bid_ids))
    r.submit_all(members=[3])
    far = {**FULL_SHEET, "T1": "1"}  # the others gave 10 of 12: |1 - 10| > 0.3 x 12
    room.save_sheet(r.member_actor(2), r.evaluation_id, bid, far)
    room.submit_sheet(r.member_actor(2), r.evaluation_id, bid)
    db.session.commit()
    warning = [d for e, d, _ in sent if e == "room.warning"][-1]
    assert warning["warnings"] == [{"member_id": r.member_ids[2], "bid_opening_id": bid, "criterion": "T1"}]
    assert r.evaluation.status == EvaluationStatus.SCORING  # a warning, never a block


def test_all_submitted_moves_to_summary(make_room):
    r = make_room(experts=5)
    r.submit_all()
    assert r.evaluation.status == EvaluationStatus.SUMMARY
    assert room_actions(r.evaluation_id)[-1] == "evaluation.all_submitted"


def test_chair_election_by_more_than_half_of_the_seats(make_room, sent):
    r = make_room(experts=5)
    ev, m = r.evaluation_id, r.member_ids
    assert refused(ValidationFailed, room.vote_chair, r.member_actor(3), ev, 999999)
    room.vote_chair(r.member_actor(0), ev, m[1])
    room.vote_chair(r.member_actor(1), ev, m[1])
    room.vote_chair(r.member_actor(2), ev, m[2])
    db.session.commit()
    room.vote_chair(r.member_actor(2), ev, m[1])  # changed vote: 3 of 5 seats
    db.session.commit()
    assert r.evaluation.chair_member_id == m[1]
    chair = [d for e, d, _ in sent if e == "room.chair"]
    assert chair[-1]["chair_member_id"] == m[1] and chair[-1]["needed"] == 3 and chair[-1]["votes_cast"] == 3
    assert chair[-2]["chair_member_id"] is None
    assert refused(RuleViolation, room.vote_chair, r.member_actor(3), ev, m[3]).code == "chair_elected"
    assert room_actions(ev)[-2:] == ["evaluation.chair_vote", "evaluation.chair_elected"]
    assert [e["event"] for e in committee_events(r.tender_id)][-2:] == ["chair-vote", "chair-elected"]


def test_clarification_round_trip(make_room, sent):
    r = make_room()
    bid = r.bid_ids[0]
    bidder = r.bidder_of(bid)
    c = room.ask_clarification(r.member_actor(0), r.evaluation_id, bid, "Confirm the duration of stage 2.", minutes=30)
    db.session.commit()
    assert c.organisation_id == bidder.org.id and c.status == ClarificationStatus.OPEN
    note = db.session.scalar(select(Notification).where(Notification.person_id == bidder.person.id,
                                                        Notification.kind == "evaluation_clarification"))
    assert note is not None and "Confirm the duration" in note.body
    other = r.bidder_of(r.bid_ids[1])
    assert refused(Forbidden, room.answer_clarification, other.actor, c.id, "not ours").code == "not_the_bidder"
    assert refused(Forbidden, room.answer_clarification, r.member_actor(1), c.id, "no").code == "not_the_bidder"
    room.answer_clarification(bidder.actor, c.id, "Stage 2 takes 120 days.")
    db.session.commit()
    assert c.status == ClarificationStatus.ANSWERED and c.answered_by_id == bidder.person.id
    landed = [d for e, d, _ in sent if e == "room.clarification"]
    assert landed[-1]["answer"] == "Stage 2 takes 120 days." and landed[-1]["status"] == "answered"
    assert refused(RuleViolation, room.answer_clarification, bidder.actor, c.id, "again").code == \
        "clarification_closed"
    assert room_actions(r.evaluation_id)[-2:] == ["evaluation.clarification_asked",
                                                  "evaluation.clarification_answered"]


def test_overdue_clarification_expires_and_cannot_be_answered(make_room):
    r = make_room()
    bid = r.bid_ids[0]
    c = room.ask_clarification(r.member_actor(0), r.evaluation_id, bid, "Why so cheap?", minutes=10)
    db.session.commit()
    refused(ValidationFailed, room.ask_clarification, r.member_actor(0), r.evaluation_id, bid, "q", minutes=2)
    clock.travel(timedelta(minutes=11))
    assert refused(RuleViolation, room.answer_clarification, r.bidder_of(bid).actor, c.id, "late").code == \
        "clarification_closed"
    from evaluation.room_flow import expire_due
    assert expire_due(r.evaluation_id) == 1
    db.session.commit()
    assert c.status == ClarificationStatus.EXPIRED
    assert committee_events(r.tender_id)[-1]["event"] == "clarification-expired"


def test_dispute_decided_by_majority_with_dissent_kept(make_room, sent):
    r = make_room(experts=5)
    ev, bid = r.evaluation_id, r.bid_ids[0]
    d = room.raise_dispute(r.member_actor(0), ev, bid, "Q2", "The manager holds another active project.")
    db.session.commit()
    assert refused(Conflict, room.raise_dispute, r.member_actor(1), ev, bid, "Q2", "again").code == "already_disputed"
    assert refused(ValidationFailed, room.raise_dispute, r.member_actor(1), ev, bid, "T1", "scores are not voted")
    votes = ["fail", "fail", "pass", "fail", "pass"]
    for i, vote in enumerate(votes[:4]):
        room.vote_dispute(r.member_actor(i), d.id, vote, reason="certificate valid" if vote == "pass" else None)
        db.session.commit()
        assert d.status == DisputeStatus.VOTING
    room.vote_dispute(r.member_actor(3), d.id, "pass", reason="changed my mind")  # changeable while voting
    db.session.commit()
    room.vote_dispute(r.member_actor(4), d.id, "fail")
    db.session.commit()
    assert (d.status, d.outcome) == (DisputeStatus.DECIDED, "fail")  # 3 fail : 2 pass
    assert {v.member_id: v.reason for v in d.votes if v.vote == "pass"} == {
        r.member_ids[2]: "certificate valid", r.member_ids[3]: "changed my mind"}
    assert refused(RuleViolation, room.vote_dispute, r.member_actor(0), d.id, "pass").code == "decided"
    assert room_actions(ev)[-1] == "evaluation.dispute_decided"
    assert committee_events(r.tender_id)[-1]["detail"] == "fail 2:3"
    assert [x for e, x, _ in sent if e == "room.dispute"][-1]["outcome"] == "fail"


def test_summary_and_completion_by_the_chair_only(make_room, sent):
    r = make_room(experts=5, bidders=4)  # 3 valid bids: no competition question
    ev = r.evaluation_id
    assert refused(NotChair, room.write_summary, r.member_actor(0), ev, "Summary")
    r.elect(0)
    d = room.raise_dispute(r.member_actor(1), ev, r.bid_ids[0], "F1", "No seal on page 3.")
    db.session.commit()
    r.submit_all()
    assert r.evaluation.status == EvaluationStatus.SUMMARY
    assert refused(NotChair, room.write_summary, r.member_actor(1), ev, "Summary")
    assert refused(RuleViolation, room.complete_evaluation, r.member_actor(0), ev).code == "dispute_open"
    for i in range(5):
        room.vote_dispute(r.member_actor(i), d.id, "pass")
        db.session.commit()
    assert refused(RuleViolation, room.complete_evaluation, r.member_actor(0), ev).code == "summary_missing"
    room.write_summary(r.member_actor(0), ev, "Both bids pass; ranking follows the scores.")
    db.session.commit()
    assert refused(NotChair, room.complete_evaluation, r.member_actor(1), ev)
    room.complete_evaluation(r.member_actor(0), ev)
    db.session.commit()
    assert r.evaluation.status == EvaluationStatus.COMPLETE and r.evaluation.completed_at is not None
    assert refused(RuleViolation, room.write_summary, r.member_actor(0), ev, "again").code == "wrong_stage"
    assert [d for e, d, _ in sent if e == "room.status"][-1]["status"] == "complete"


def test_completion_waits_for_every_sheet(make_room):
    r = make_room(experts=5)
    r.elect(0)
    r.submit_all(members=[0, 1, 2, 3])
    room.write_summary(r.member_actor(0), r.evaluation_id, "Summary")
    db.session.commit()
    assert refused(RuleViolation, room.complete_evaluation, r.member_actor(0), r.evaluation_id).code == \
        "sheets_missing"


def test_supervisor_reads_but_every_write_is_refused(make_room):
    r = make_room()
    sup, ev, bid = r.supervisor_actor, r.evaluation_id, r.bid_ids[0]
    d = room.raise_dispute(r.member_actor(0), ev, bid, "Q1", "reason")
    db.session.commit()
    calls = [(room.save_sheet, ev, bid, {"T1": "1"}), (room.submit_sheet, ev, bid), (room.vote_chair, ev, r.member_ids[0]),
             (room.ask_clarification, ev, bid, "q"), (room.raise_dispute, ev, bid, "Q2", "r"),
             (room.vote_dispute, d.id, "pass"), (room.write_summary, ev, "s"), (room.complete_evaluation, ev)]
    for func, *args in calls:
        assert refused(ReadOnly, func, sup, *args).code == "read_only"
    c = room.ask_clarification(r.member_actor(0), ev, bid, "q")
    db.session.commit()
    assert refused(Forbidden, room.answer_clarification, sup, c.id, "a").code == "not_the_bidder"


def test_outsiders_cannot_act(make_room):
    r = make_room()
    ev, bid = r.evaluation_id, r.bid_ids[0]
    for actor in (r.bidder_actor(0), r.host_actor):
        refused(NotInRoom, room.save_sheet, actor, ev, bid, {"T1": "1"})
        refused(Forbidden, room.suspend, actor, ev, "no")
    refused(Forbidden, room.suspend, r.member_actor(0), ev, "members cannot suspend")


def test_suspension_refuses_every_write_until_resumed(make_room, sent):
    r = make_room()
    ev, bid, actor = r.evaluation_id, r.bid_ids[0], r.member_actor(0)
    c = room.ask_clarification(actor, ev, bid, "q")
    db.session.commit()
    assert refused(ValidationFailed, room.suspend, r.supervisor_actor, ev, " ")
    room.suspend(r.supervisor_actor, ev, "Video feed of room 2 lost")
    db.session.commit()
    assert r.evaluation.status == EvaluationStatus.SUSPENDED and r.evaluation.resume_to == EvaluationStatus.SCORING
    assert [d for e, d, _ in sent if e == "room.status"][-1]["reason"] == "Video feed of room 2 lost"
    error = refused(RoomSuspended, room.save_sheet, actor, ev, bid, {"T1": "1"})
    assert "Video feed of room 2 lost" in error.to_dict()["message"] and error.code == "suspended"
    for func, *args in [(room.vote_chair, ev, r.member_ids[0]), (room.ask_clarification, ev, bid, "q"),
                        (room.raise_dispute, ev, bid, "Q1", "r")]:
        refused(RoomSuspended, func, actor, *args)
    refused(RoomSuspended, room.answer_clarification, r.bidder_of(bid).actor, c.id, "a")
    assert refused(RuleViolation, room.suspend, r.supervisor_actor, ev, "twice").code == "wrong_stage"
    room.resume(r.supervisor_actor, ev)
    db.session.commit()
    assert r.evaluation.status == EvaluationStatus.SCORING and r.evaluation.suspended_reason is None
    room.save_sheet(actor, ev, bid, {"T1": "1"})
    db.session.commit()
    assert room_actions(ev)[-3:] == ["evaluation.clarification_asked", "evaluation.suspended", "evaluation.resumed"]


def test_a_suspended_tender_suspends_the_room(make_room):
    r = make_room()
    tender = db.session.get(Tender, r.tender_id)
    tender.is_suspended = True
    db.session.commit()
    assert refused(TenderSuspended, room.save_sheet, r.member_actor(0), r.evaluation_id, r.bid_ids[0],
                   {"T1": "1"}).code == "tender_suspended"


def test_every_committee_event_is_audited_and_logged(make_room):
    r = make_room(experts=5, bidders=4)  # 3 valid bids: no competition question
    ev, bid = r.evaluation_id, r.bid_ids[0]
    r.elect(0)
    c = room.ask_clarification(r.member_actor(1), ev, bid, "q")
    db.session.commit()
    room.answer_clarification(r.bidder_of(bid).actor, c.id, "a")
    d = room.raise_dispute(r.member_actor(2), ev, bid, "R1", "late")
    db.session.commit()
    for i in range(5):
        room.vote_dispute(r.member_actor(i), d.id, "pass")
        db.session.commit()
    room.suspend(r.supervisor_actor, ev, "check")
    db.session.commit()
    room.resume(r.supervisor_actor, ev)
    db.session.commit()
    r.submit_all()
    room.write_summary(r.member_actor(0), ev, "summary")
    room.complete_evaluation(r.member_actor(0), ev)
    db.session.commit()
    logged = [e["event"] for e in committee_events(r.tender_id)]
    audited = [a.removeprefix("evaluation.").replace("_", "-") for a in room_actions(ev)]
    expected = ["started", "scoring", "chair-vote", "chair-vote", "chair-vote", "chair-elected",
                "clarification-asked", "clarification-answered", "dispute-raised",
                *["dispute-vote"] * 5, "dispute-decided", "suspended", "resumed",
                *["sheet-submitted"] * (5 * len(r.bid_ids)), "all-submitted", "summary", "result", "completed",
                "report-prepared"]
    assert logged == expected
    assert [a.replace("dispute-voted", "dispute-vote") for a in audited] == expected


def _at_once(app, works) -> list:
    """Run each of ``works`` in its own thread, app context and session, released together; return what each
    returned or raised."""
    barrier, outcomes = threading.Barrier(len(works)), [None] * len(works)

    def run(i):
        with app.app_context():
            try:
                barrier.wait()
                outcomes[i] = works[i]()
            except Exception as exc:  # noqa: BLE001 - the test asserts on it
                db.session.rollback()
                outcomes[i] = exc
            finally:
                db.session.remove()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(works))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcomes


@pytest.mark.postgres
def test_simultaneous_submissions_and_votes_keep_one_log_and_one_outcome(make_room, app):
    r = make_room(experts=5, bidders=3, failed=2)  # one evaluated bid
    ev, bid = r.evaluation_id, r.bid_ids[0]
    actors = [r.member_actor(i) for i in range(5)]
    for actor in actors:
        room.save_sheet(actor, ev, bid, FULL_SHEET)
    db.session.commit()

    def submitter(actor):
        def work():
            room.submit_sheet(actor, ev, bid)
            db.session.commit()
            return "ok"
        return work

    def voter(actor):
        def work():
            room.vote_chair(actor, ev, r.member_ids[0])
            db.session.commit()
            return "ok"
        return work
    assert _at_once(app, [submitter(a) for a in actors]) == ["ok"] * 5
    outcomes = _at_once(app, [voter(a) for a in actors])
    db.session.expire_all()
    assert outcomes.count("ok") >= 3 and all(o == "ok" or o.code == "chair_elected" for o in outcomes)
    assert r.evaluation.status == EvaluationStatus.SUMMARY and r.evaluation.chair_member_id == r.member_ids[0]
    actions = room_actions(ev)
    assert actions.count("evaluation.sheet_submitted") == 5 and actions.count("evaluation.all_submitted") == 1
    assert actions.count("evaluation.chair_elected") == 1
    events = [e["event"] for e in committee_events(r.tender_id)]
    assert events.count("sheet-submitted") == 5 and events.count("chair-elected") == 1
    indexes = [e.index for e in translog.entries(r.tender_id, 0, translog.size_of(r.tender_id))]
    assert indexes == list(range(len(indexes)))
