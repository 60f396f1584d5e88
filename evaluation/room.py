"""Scoring room services (评标室): start, sheets, chair, clarifications, disputes, summary, suspension.

Each service takes the actor, locks the tender (room writes and their log entries go one at a time),
checks the actor's place in the room and the room's stage, changes, writes the audit trail and a
``committee`` entry of the tender's transparency log, flushes and queues the room's realtime events.
They never commit. Draft saves are not audit events: a draft carries a revision counter instead.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from bidding.lifecycle import transition
from bidding.models import Tender, TenderStatus
from bidding.policy import clean_text, require_manager
from bidding.record_models import OpeningRecord, RecordStatus
from core.actor import Actor
from core.audit import canonical
from core.clock import beijing, now
from core.db import db, locked_scalars
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.identity.models import Role
from core.notifications import members as org_members
from core.notifications import notify
from evaluation import criteria as C
from evaluation import outcome, report
from evaluation.pool_models import DrawStatus
from evaluation.room_errors import RoomNotFound, RoomRefused, StaleRevision, WrongStage
from evaluation.room_events import CHAIR, CLARIFICATION, DISPUTE, STATUS, SUMMARY
from evaluation.room_flow import (
    committee_log,
    emit,
    enter,
    lock_room,
    members_changed,
    publish_submission,
    record,
    require_bid,
    require_chair,
    require_stage,
    sheet_for,
    update_sheet,
)
from evaluation.room_models import (
    ChairVote,
    Clarification,
    ClarificationStatus,
    Dispute,
    DisputeStatus,
    DisputeVote,
    Evaluation,
    EvaluationStatus,
    ScoreSheet,
)
from evaluation.room_state import (
    SUPERVISOR,
    all_submitted,
    chair_view,
    clarification_view,
    dispute_view,
    draw_request_of,
    room_access,
    seat_count,
    signed_in_members,
    status_view,
)

S = EvaluationStatus
ACTIVE = (S.SIGNING_IN, S.SCORING, S.SUMMARY)
MIN_MINUTES, MAX_MINUTES = 5, 24 * 60


def _sha256(data: Any) -> str:
    return hashlib.sha256(canonical(data)).hexdigest()


def _text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- start -------------------------------------------------------------------------------------------

def start_evaluation(actor: Actor, tender_id: int) -> Evaluation:
    """Open the tender's evaluation: opening record published, committee complete; criteria frozen."""
    tender = locked_scalars(select(Tender).where(Tender.id == tender_id), Tender, Tender.id == tender_id).first()
    if tender is None:
        raise NotFound(_l("This tender does not exist; check the link."))
    if actor.role != Role.ADMIN:
        require_manager(actor, tender)
    if db.session.scalar(select(Evaluation.id).where(Evaluation.tender_id == tender.id)):
        raise Conflict(_l("The evaluation of this tender has already started; open its room instead."),
                       code="already_started")
    published = db.session.scalar(select(OpeningRecord.status).where(OpeningRecord.tender_id == tender.id))
    if published != RecordStatus.PUBLISHED:
        raise RoomRefused(_l("The opening record is not published yet; the evaluation starts once the host and "
                             "the supervisor have signed it."), code="record_not_published")
    request = draw_request_of(tender.id)
    if request is None or request.status != DrawStatus.COMPLETE:
        raise RoomRefused(_l("The committee is not complete yet; finish drawing the experts (and any top-up draw) "
                             "first."), code="committee_incomplete")
    method = dict(tender.evaluation_method or {})
    evaluation = Evaluation(tender_id=tender.id, criteria=C.criteria_for(method), started_by_id=actor.person_id,
                            deviation_threshold=C.threshold_for(method), status=S.SIGNING_IN, started_at=now())
    if tender.status != TenderStatus.EVALUATION:
        transition(tender, TenderStatus.EVALUATION)
    db.session.add(evaluation)
    db.session.flush()
    record(actor, "started", evaluation, criteria=len(evaluation.criteria), seats=seat_count(request))
    committee_log(evaluation, "started", detail=f"criteria {_sha256(evaluation.criteria)[:16]}")
    members_changed(evaluation.id)
    return evaluation


# --- sheets ------------------------------------------------------------------------------------------

def save_sheet(actor: Actor, evaluation_id: int, bid_opening_id: int, values: dict[str, str],
               comments: dict[str, str] | None = None, revision: int | None = None) -> ScoreSheet:
    """Autosave a draft: merge ``values`` (``""`` clears one) and ``comments``; any refused value refuses all."""
    evaluation, access = enter(actor, evaluation_id, S.SCORING)
    require_bid(evaluation, bid_opening_id)
    sheet = sheet_for(evaluation, access.member_id, bid_opening_id)
    if revision is not None and sheet.id is not None and revision != sheet.revision:
        raise StaleRevision(sent=revision, current=sheet.revision)
    update_sheet(evaluation, sheet, values, comments)
    return sheet


def submit_sheet(actor: Actor, evaluation_id: int, bid_opening_id: int) -> ScoreSheet:
    """Submit a complete sheet (final); then warn on deviations and move to the summary once all are in."""
    evaluation, access = enter(actor, evaluation_id, S.SCORING)
    require_bid(evaluation, bid_opening_id)
    sheet = sheet_for(evaluation, access.member_id, bid_opening_id, create=False)
    if sheet is None or sheet.submitted_at is not None:
        raise RoomRefused(_l("There is no draft to submit for this bid, or it is already submitted; fill in the "
                             "sheet first."), code="nothing_to_submit")
    filled, total = C.progress(evaluation.criteria, sheet.values or {})
    if filled < total:
        missing = [c["code"] for c in evaluation.criteria if c["code"] not in (sheet.values or {})]
        raise RoomRefused(_l("The sheet is incomplete (%(filled)s of %(total)s items); fill in: %(missing)s."),
                          code="incomplete", filled=filled, total=total, missing=", ".join(missing))
    unexplained = C.missing_reasons(evaluation.criteria, sheet.values or {}, sheet.comments or {})
    if unexplained:
        raise RoomRefused(_l("A fail must say why; write the reason for: %(codes)s."), code="reason_required",
                          codes=", ".join(unexplained))
    sheet.submitted_at = now()
    digest = _sha256({"values": sheet.values, "comments": sheet.comments})
    db.session.flush()
    record(actor, "sheet_submitted", evaluation, member_id=access.member_id, bid_opening_id=bid_opening_id,
            sha256=digest)
    committee_log(evaluation, "sheet-submitted", member=access.member_id, bid=bid_opening_id, sha256=digest)
    publish_submission(evaluation, sheet)
    _to_summary_when_all_submitted(actor, evaluation)
    return sheet


def _to_summary_when_all_submitted(actor: Actor, evaluation: Evaluation) -> None:
    if not all_submitted(evaluation):
        return
    evaluation.status = S.SUMMARY
    db.session.flush()
    record(actor, "all_submitted", evaluation)
    committee_log(evaluation, "all-submitted")
    emit(evaluation, STATUS, status_view(evaluation))


# --- chair -------------------------------------------------------------------------------------------

def vote_chair(actor: Actor, evaluation_id: int, candidate_member_id: int) -> ChairVote:
    """Vote (or change one's vote) for the chair; more than half of the seats elects."""
    evaluation, access = enter(actor, evaluation_id, *ACTIVE)
    if evaluation.chair_member_id is not None:
        raise RoomRefused(_l("The committee has already elected its chair."), code="chair_elected")
    if candidate_member_id not in {m.id for m in signed_in_members(evaluation.tender_id)}:
        raise ValidationFailed(_l("Vote for a signed-in member of this committee."),
                               fields={"candidate_id": _l("Not a signed-in member.")})
    vote = db.session.scalar(select(ChairVote).where(ChairVote.evaluation_id == evaluation.id,
                                                     ChairVote.voter_id == access.member_id))
    if vote is None:
        vote = ChairVote(evaluation_id=evaluation.id, voter_id=access.member_id)
        db.session.add(vote)
    vote.candidate_id, vote.at = candidate_member_id, now()
    db.session.flush()
    record(actor, "chair_vote", evaluation, voter_id=access.member_id, candidate_id=candidate_member_id)
    committee_log(evaluation, "chair-vote", member=access.member_id, detail=f"for {candidate_member_id}")
    view = chair_view(evaluation)
    winner = next((c["candidate_id"] for c in view["counts"] if c["votes"] >= view["needed"]), None)
    if winner is not None:
        evaluation.chair_member_id = winner
        db.session.flush()
        record(actor, "chair_elected", evaluation, chair_member_id=winner, votes=view["votes_cast"])
        committee_log(evaluation, "chair-elected", member=winner)
        view = chair_view(evaluation)
    emit(evaluation, CHAIR, view)
    return vote


# --- clarifications (澄清) ------------------------------------------------------------------------------

def ask_clarification(actor: Actor, evaluation_id: int, bid_opening_id: int, question: str,
                      minutes: int = 30) -> Clarification:
    """Ask the bidder of one bid a written question, due in ``minutes``; the bidder is notified.

    Also in the summary stage: an abnormally low price (异常低价) found then must be explained first."""
    evaluation, access = enter(actor, evaluation_id, S.SCORING, S.SUMMARY)
    bid = require_bid(evaluation, bid_opening_id)
    text = clean_text(question, "question", max_length=4000)
    try:
        minutes = int(minutes)
    except (TypeError, ValueError):
        minutes = -1
    if not MIN_MINUTES <= minutes <= MAX_MINUTES:
        raise ValidationFailed(_l("Give the bidder from %(min)s to %(max)s minutes to answer."),
                               min=MIN_MINUTES, max=MAX_MINUTES, fields={"minutes": _l("Out of range.")})
    asked = now()
    c = Clarification(evaluation_id=evaluation.id, bid_opening_id=bid.id, organisation_id=bid.organisation_id,
                      asked_by_id=access.member_id, question=text, asked_at=asked,
                      due_at=asked + timedelta(minutes=minutes), status=ClarificationStatus.OPEN)
    db.session.add(c)
    db.session.flush()
    record(actor, "clarification_asked", evaluation, clarification_id=c.id, bid_opening_id=bid.id,
            due_at=c.due_at.isoformat())
    committee_log(evaluation, "clarification-asked", member=access.member_id, bid=bid.id,
                  sha256=_text_sha256(text))
    notify(org_members([bid.organisation_id], [Role.BIDDER]), kind="evaluation_clarification",
           object_type="evaluation_clarification", object_id=c.id,
           subject=_l("The evaluation committee of %(tender)s asks for a clarification; answer by %(due)s "
                      "(Beijing time)."),
           body=_l("Question: %(question)s"), tender=evaluation.tender.code,
           due=beijing(c.due_at).strftime("%Y-%m-%d %H:%M"), question=text)
    emit(evaluation, CLARIFICATION, clarification_view(c))
    return c


def answer_clarification(actor: Actor, clarification_id: int, answer: str) -> Clarification:
    """The bidder's written answer, by its own staff before the due time; it lands in the room."""
    c = db.session.get(Clarification, clarification_id)
    if c is None:
        raise NotFound(_l("This clarification request does not exist."))
    evaluation = lock_room(c.evaluation_id)
    db.session.refresh(c)
    if actor.role != Role.BIDDER or actor.organisation_id != c.organisation_id:
        raise Forbidden(_l("Only the bidder asked may answer this clarification, acting for its organisation."),
                        code="not_the_bidder")
    require_stage(evaluation, S.SCORING, S.SUMMARY)
    if c.status != ClarificationStatus.OPEN or now() >= c.due_at:
        raise RoomRefused(_l("This clarification is closed (answered or past its due time %(due)s); it can no "
                             "longer be answered."), code="clarification_closed",
                          due=beijing(c.due_at).strftime("%Y-%m-%d %H:%M"))
    c.answer = clean_text(answer, "answer", max_length=8000)
    c.answered_by_id, c.answered_at, c.status = actor.person_id, now(), ClarificationStatus.ANSWERED
    db.session.flush()
    record(actor, "clarification_answered", evaluation, clarification_id=c.id, bid_opening_id=c.bid_opening_id)
    committee_log(evaluation, "clarification-answered", bid=c.bid_opening_id,
                  sha256=_text_sha256(c.answer))
    emit(evaluation, CLARIFICATION, clarification_view(c))
    return c


# --- disputes (少数服从多数) ----------------------------------------------------------------------------

def raise_dispute(actor: Actor, evaluation_id: int, bid_opening_id: int, criterion: str, reason: str) -> Dispute:
    """Put a pass/fail finding on one bid to the committee's vote."""
    evaluation, access = enter(actor, evaluation_id, S.SCORING, S.SUMMARY)
    require_bid(evaluation, bid_opening_id)
    item = C.by_code(evaluation.criteria).get(criterion)
    if item is None or item["kind"] != C.PASS_FAIL:
        raise ValidationFailed(_l("Only pass/fail items can be put to a vote; %(item)s is not one."),
                               item=str(criterion)[:64], fields={"criterion": _l("Choose a pass/fail item.")})
    if db.session.scalar(select(Dispute.id).where(Dispute.evaluation_id == evaluation.id,
                                                  Dispute.bid_opening_id == bid_opening_id,
                                                  Dispute.criterion == criterion)):
        raise Conflict(_l("This item of this bid is already put to a vote; vote on it instead."),
                       code="already_disputed")
    d = Dispute(evaluation_id=evaluation.id, bid_opening_id=bid_opening_id, criterion=criterion,
                raised_by_id=access.member_id, reason=clean_text(reason, "reason", max_length=4000),
                raised_at=now(), status=DisputeStatus.VOTING)
    db.session.add(d)
    db.session.flush()
    record(actor, "dispute_raised", evaluation, dispute_id=d.id, bid_opening_id=bid_opening_id, criterion=criterion)
    committee_log(evaluation, "dispute-raised", member=access.member_id, bid=bid_opening_id, criterion=criterion)
    emit(evaluation, DISPUTE, dispute_view(d))
    return d


def vote_dispute(actor: Actor, dispute_id: int, vote: str, reason: str | None = None) -> Dispute:
    """Vote pass or fail (changeable until decided); once every member voted, the majority decides."""
    d = db.session.get(Dispute, dispute_id)
    if d is None:
        raise NotFound(_l("This dispute does not exist."))
    evaluation, access = enter(actor, d.evaluation_id, S.SCORING, S.SUMMARY)
    db.session.refresh(d)
    if d.status != DisputeStatus.VOTING:
        raise RoomRefused(_l("This dispute is already decided (%(outcome)s)."), code="decided", outcome=d.outcome)
    if vote not in (C.PASS, C.FAIL):
        raise ValidationFailed(_l("Vote pass or fail."), fields={"vote": _l("Vote pass or fail.")})
    row = next((v for v in d.votes if v.member_id == access.member_id), None)
    if row is None:
        row = DisputeVote(dispute=d, member_id=access.member_id)
        db.session.add(row)
    row.vote, row.at = vote, now()
    row.reason = clean_text(reason, "reason", max_length=4000, required=False) or None
    db.session.flush()
    record(actor, "dispute_voted", evaluation, dispute_id=d.id, member_id=access.member_id, vote=vote)
    committee_log(evaluation, "dispute-vote", member=access.member_id, bid=d.bid_opening_id, criterion=d.criterion,
                  detail=vote)
    members = {m.id for m in signed_in_members(evaluation.tender_id)}
    votes = [v.vote for v in d.votes if v.member_id in members]
    passes, fails = votes.count(C.PASS), votes.count(C.FAIL)
    if len(votes) >= len(members) and passes != fails:
        d.status, d.outcome, d.decided_at = DisputeStatus.DECIDED, C.PASS if passes > fails else C.FAIL, now()
        db.session.flush()
        record(actor, "dispute_decided", evaluation, dispute_id=d.id, outcome=d.outcome, passes=passes, fails=fails)
        committee_log(evaluation, "dispute-decided", bid=d.bid_opening_id, criterion=d.criterion,
                      detail=f"{d.outcome} {passes}:{fails}")
    emit(evaluation, DISPUTE, dispute_view(d))
    return d


# --- summary, completion ------------------------------------------------------------------------------

def write_summary(actor: Actor, evaluation_id: int, text: str) -> Evaluation:
    """The chair writes (or rewrites) the committee's summary."""
    evaluation, access = enter(actor, evaluation_id, S.SCORING, S.SUMMARY)
    require_chair(evaluation, access)
    evaluation.summary = clean_text(text, "text", max_length=20000)
    evaluation.summary_at = now()
    db.session.flush()
    digest = _text_sha256(evaluation.summary)
    record(actor, "summary", evaluation, sha256=digest)
    committee_log(evaluation, "summary", member=access.member_id, sha256=digest)
    emit(evaluation, SUMMARY, {"text": evaluation.summary, "at": evaluation.summary_at.isoformat()})
    return evaluation


def complete_evaluation(actor: Actor, evaluation_id: int) -> Evaluation:
    """The chair completes: every sheet submitted, no dispute still voting, the summary written, every
    committee decision taken; the result is frozen and the report prepared for the members' signatures."""
    evaluation, access = enter(actor, evaluation_id, S.SCORING, S.SUMMARY)
    require_chair(evaluation, access)
    if not all_submitted(evaluation):
        raise RoomRefused(_l("Not every member has submitted every bid's sheet yet; wait for them."),
                          code="sheets_missing")
    if db.session.scalar(select(Dispute.id).where(Dispute.evaluation_id == evaluation.id,
                                                  Dispute.status == DisputeStatus.VOTING).limit(1)):
        raise RoomRefused(_l("A dispute is still being voted on; finish the vote first."), code="dispute_open")
    if not evaluation.summary:
        raise RoomRefused(_l("Write the committee's summary first."), code="summary_missing")
    stored = outcome.finalize(actor, evaluation)  # refuses while a committee decision is missing
    evaluation.status, evaluation.completed_at = S.COMPLETE, now()
    db.session.flush()
    record(actor, "completed", evaluation, summary_sha256=_text_sha256(evaluation.summary))
    committee_log(evaluation, "completed", member=access.member_id)
    report.prepare(actor, evaluation, stored)
    emit(evaluation, STATUS, status_view(evaluation))
    return evaluation


# --- suspension (监督) ---------------------------------------------------------------------------------

def _supervisor(actor: Actor, evaluation_id: int) -> Evaluation:
    evaluation = lock_room(evaluation_id)
    if evaluation is None:
        raise RoomNotFound()
    access = room_access(actor.person_id, evaluation_id)
    if access is None or access.role != SUPERVISOR:
        raise Forbidden(_l("Only a supervisor may suspend or resume the evaluation room."), code="not_supervisor")
    return evaluation


def suspend(actor: Actor, evaluation_id: int, reason: str) -> Evaluation:
    """A supervisor suspends the room with a reason; every write is refused until resumed."""
    evaluation = _supervisor(actor, evaluation_id)
    if evaluation.status not in ACTIVE:
        raise WrongStage(status=evaluation.status.value, allowed=" / ".join(s.value for s in ACTIVE))
    evaluation.suspended_reason = clean_text(reason, "reason", max_length=2000)
    evaluation.resume_to, evaluation.status = evaluation.status, S.SUSPENDED
    evaluation.suspended_at, evaluation.suspended_by_id = now(), actor.person_id
    db.session.flush()
    record(actor, "suspended", evaluation, reason=evaluation.suspended_reason)
    committee_log(evaluation, "suspended", detail=evaluation.suspended_reason[:200])
    emit(evaluation, STATUS, status_view(evaluation))
    return evaluation


def resume(actor: Actor, evaluation_id: int) -> Evaluation:
    """A supervisor resumes a suspended room to where it was."""
    evaluation = _supervisor(actor, evaluation_id)
    if evaluation.status != S.SUSPENDED:
        raise WrongStage(status=evaluation.status.value, allowed=S.SUSPENDED.value)
    evaluation.status, evaluation.resume_to = evaluation.resume_to or S.SCORING, None
    evaluation.suspended_reason = evaluation.suspended_at = evaluation.suspended_by_id = None
    db.session.flush()
    record(actor, "resumed", evaluation, status=evaluation.status.value)
    committee_log(evaluation, "resumed", detail=evaluation.status.value)
    emit(evaluation, STATUS, status_view(evaluation))
    return evaluation

