"""Who may enter the scoring room (评标室), and the room as one viewer sees it.

:func:`room_access` says whether a person is in the room, as a signed-in member (评委) or a supervisor
(监督人员); :func:`room_state` is the whole room for that viewer, JSON-ready: a reconnecting client gets
exactly the current state, its own drafts included. A member's values stay hidden from the other
members until both have submitted their sheet for that bid; supervisors read every sheet.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import gettext
from sqlalchemy import select

from bidding.opening_models import BidOpening, BidOpeningStatus, OpeningParticipant, ParticipantRole
from core.db import db
from core.identity.models import Person, Role, RoleGrant
from evaluation import criteria as C
from evaluation.pool_models import CommitteeMember, DrawRequest, Expert, MemberStatus
from evaluation.room_errors import RoomNotFound
from evaluation.room_models import (
    ChairVote,
    Clarification,
    Dispute,
    Evaluation,
    EvaluationStatus,
    ScoreSheet,
)

MEMBER, SUPERVISOR = "member", "supervisor"


@dataclass(frozen=True)
class RoomAccess:
    """A viewer of the room: a signed-in member or a supervisor."""

    role: str  # "member" | "supervisor"
    name: str
    member_id: int | None
    person_id: int
    evaluation_id: int
    tender_id: int

    @property
    def is_member(self) -> bool:
        return self.role == MEMBER


def get_evaluation(evaluation_id: int) -> Evaluation:
    evaluation = db.session.get(Evaluation, evaluation_id)
    if evaluation is None:
        raise RoomNotFound()
    return evaluation


def is_supervisor_of(person_id: int, tender_id: int) -> bool:
    """A supervisor by role (any organisation) or named supervisor (监督人) of the tender's opening."""
    if db.session.scalar(select(RoleGrant.id).where(RoleGrant.person_id == person_id,
                                                    RoleGrant.role == Role.SUPERVISOR).limit(1)):
        return True
    return db.session.scalar(select(OpeningParticipant.id).where(
        OpeningParticipant.tender_id == tender_id, OpeningParticipant.person_id == person_id,
        OpeningParticipant.role == ParticipantRole.SUPERVISOR).limit(1)) is not None


def room_access(person_id: int | None, evaluation_id: int) -> RoomAccess | None:
    """The viewer's access to the room, or None for anyone else (bidders, staff, experts not signed in)."""
    evaluation = db.session.get(Evaluation, evaluation_id)
    if evaluation is None or person_id is None:
        return None
    member = db.session.scalar(
        select(CommitteeMember).join(Expert, Expert.id == CommitteeMember.expert_id)
        .where(CommitteeMember.tender_id == evaluation.tender_id, Expert.person_id == person_id,
               CommitteeMember.status == MemberStatus.SIGNED_IN))
    if member is not None:
        return RoomAccess(MEMBER, member.expert.name, member.id, person_id, evaluation.id, evaluation.tender_id)
    person = db.session.get(Person, person_id)
    if person is not None and person.is_enabled and is_supervisor_of(person_id, evaluation.tender_id):
        return RoomAccess(SUPERVISOR, person.name, None, person_id, evaluation.id, evaluation.tender_id)
    return None


def draw_request_of(tender_id: int) -> DrawRequest | None:
    return db.session.scalar(select(DrawRequest).where(DrawRequest.tender_id == tender_id))


def seat_count(request: DrawRequest) -> int:
    """Expert seats of the committee: its size less the tenderer's representatives (招标人代表)."""
    return max(1, request.committee_size - (request.tenderer_representatives or 0))


def signed_in_members(tender_id: int) -> list[CommitteeMember]:
    """The members who signed in (签到, recusal declaration signed), in draw order."""
    stmt = (select(CommitteeMember)
            .where(CommitteeMember.tender_id == tender_id, CommitteeMember.status == MemberStatus.SIGNED_IN)
            .order_by(CommitteeMember.position))
    return list(db.session.scalars(stmt))


def members_view(evaluation: Evaluation, present: Collection[int] = ()) -> dict[str, Any]:
    """The signed-in members (the ``room.members`` payload and the state's ``members``)."""
    request = draw_request_of(evaluation.tender_id)
    members = signed_in_members(evaluation.tender_id)
    return {"seats": seat_count(request) if request else len(members),
            "members": [{"member_id": m.id, "name": m.expert.name, "specialty": m.specialty,
                         "is_chair": m.id == evaluation.chair_member_id, "present": m.id in present}
                        for m in members]}


def bid_openings(tender_id: int) -> list[BidOpening]:
    return list(db.session.scalars(select(BidOpening).where(BidOpening.tender_id == tender_id)
                                   .order_by(BidOpening.lot_id, BidOpening.id)))


def evaluated_bid_ids(tender_id: int) -> list[int]:
    """The bids the committee evaluates: those decrypted at the opening."""
    return [b.id for b in bid_openings(tender_id) if b.status == BidOpeningStatus.DECRYPTED]


def sheets_of(evaluation_id: int) -> list[ScoreSheet]:
    return list(db.session.scalars(select(ScoreSheet).where(ScoreSheet.evaluation_id == evaluation_id)
                                   .order_by(ScoreSheet.member_id, ScoreSheet.bid_opening_id)))


def all_submitted(evaluation: Evaluation) -> bool:
    """Whether every signed-in member has submitted a sheet for every evaluated bid."""
    members = {m.id for m in signed_in_members(evaluation.tender_id)}
    bids = set(evaluated_bid_ids(evaluation.tender_id))
    done = {(s.member_id, s.bid_opening_id) for s in sheets_of(evaluation.id) if s.submitted_at is not None}
    return bool(members) and all((m, b) in done for m in members for b in bids)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def progress_view(sheet: ScoreSheet, criteria: list[dict[str, Any]]) -> dict[str, Any]:
    filled, total = C.progress(criteria, sheet.values or {})
    return {"member_id": sheet.member_id, "bid_opening_id": sheet.bid_opening_id, "filled": filled,
            "total": total, "submitted": sheet.submitted_at is not None}


def sheet_view(sheet: ScoreSheet) -> dict[str, Any]:
    return {"member_id": sheet.member_id, "bid_opening_id": sheet.bid_opening_id, "values": dict(sheet.values or {}),
            "comments": dict(sheet.comments or {}), "revision": sheet.revision,
            "submitted": sheet.submitted_at is not None, "submitted_at": iso(sheet.submitted_at)}


def may_see(sheet: ScoreSheet, access: RoomAccess, submitted_by_viewer: Collection[int]) -> bool:
    """Own sheets always; supervisors all; another member's once both submitted for that bid."""
    if access.role == SUPERVISOR or sheet.member_id == access.member_id:
        return True
    return sheet.submitted_at is not None and sheet.bid_opening_id in submitted_by_viewer


def submitted_values(sheets: list[ScoreSheet]) -> dict[int, dict[int, dict[str, str]]]:
    result: dict[int, dict[int, dict[str, str]]] = {}
    for sheet in sheets:
        if sheet.submitted_at is not None:
            result.setdefault(sheet.member_id, {})[sheet.bid_opening_id] = dict(sheet.values or {})
    return result


def warnings_for(evaluation: Evaluation, sheets: list[ScoreSheet]) -> list[dict[str, Any]]:
    return C.deviation_warnings(evaluation.criteria, submitted_values(sheets), evaluation.deviation_threshold)


def bid_view(bid: BidOpening, evaluation: Evaluation) -> dict[str, Any]:
    form = bid.form or {}
    manager = form.get("project_manager") or {}
    decrypted = bid.status == BidOpeningStatus.DECRYPTED
    return {"bid_opening_id": bid.id, "bidder": bid.organisation.name, "lot": bid.lot.code,
            "status": bid.status.value, "evaluated": decrypted,
            "price": str(form["price"]) if decrypted and form.get("price") is not None else None,
            "duration_days": form.get("duration_days") if decrypted else None,
            "quality": form.get("quality") if decrypted else None,
            "project_manager": ({"name": str(manager.get("name", "")),
                                 "certificate_no": str(manager.get("certificate_no", ""))}
                                if decrypted and manager else None),
            "failure": None if decrypted else {"cause": bid.failure_cause.value if bid.failure_cause else None,
                                               "outcome": bid.legal_outcome.value if bid.legal_outcome else None},
            "bid_file_url": f"/evaluations/{evaluation.id}/bids/{bid.id}/bid.zip" if decrypted else None,
            "record_pdf_url": f"/tenders/{evaluation.tender_id}/hall/record/revision.pdf"}


def chair_view(evaluation: Evaluation, access: RoomAccess | None = None) -> dict[str, Any]:
    seated = {m.id for m in signed_in_members(evaluation.tender_id)}  # a recused member's vote no longer counts
    votes = [v for v in db.session.scalars(select(ChairVote).where(ChairVote.evaluation_id == evaluation.id))
             if v.voter_id in seated and v.candidate_id in seated]
    counts: dict[int, int] = {}
    for vote in votes:
        counts[vote.candidate_id] = counts.get(vote.candidate_id, 0) + 1
    request = draw_request_of(evaluation.tender_id)
    seats = seat_count(request) if request else 0
    mine = next((v.candidate_id for v in votes if access and v.voter_id == access.member_id), None)
    return {"chair_member_id": evaluation.chair_member_id, "seats": seats, "needed": seats // 2 + 1,
            "votes_cast": len(votes), "counts": [{"candidate_id": k, "votes": counts[k]} for k in sorted(counts)],
            "my_vote": mine}


def clarification_view(c: Clarification) -> dict[str, Any]:
    return {"id": c.id, "bid_opening_id": c.bid_opening_id, "bidder": c.organisation.name, "asked_by": c.asked_by_id,
            "question": c.question, "asked_at": iso(c.asked_at), "due_at": iso(c.due_at), "status": c.status.value,
            "answer": c.answer, "answered_at": iso(c.answered_at)}


def dispute_view(d: Dispute) -> dict[str, Any]:
    return {"id": d.id, "bid_opening_id": d.bid_opening_id, "criterion": d.criterion, "raised_by": d.raised_by_id,
            "reason": d.reason, "raised_at": iso(d.raised_at), "status": d.status.value, "outcome": d.outcome,
            "decided_at": iso(d.decided_at),
            "votes": [{"member_id": v.member_id, "vote": v.vote, "reason": v.reason, "at": iso(v.at)}
                      for v in d.votes]}


def status_view(evaluation: Evaluation) -> dict[str, Any]:
    return {"status": evaluation.status.value, "reason": evaluation.suspended_reason,
            "resume_to": evaluation.resume_to.value if evaluation.resume_to else None,
            "suspended_at": iso(evaluation.suspended_at), "tender_suspended": bool(evaluation.tender.is_suspended)}


def room_state(evaluation_id: int, access: RoomAccess, *, present: Collection[int] = ()) -> dict[str, Any]:
    """The whole room for ``access`` (JSON-ready). ``present``: member ids connected now (the socket layer knows).

    Overdue clarifications are expired first (the caller commits).
    """
    from evaluation.room_flow import expire_due  # the flow builds on this module

    evaluation = get_evaluation(evaluation_id)
    expire_due(evaluation.id)
    criteria = evaluation.criteria
    sheets = sheets_of(evaluation.id)
    mine = {s.bid_opening_id for s in sheets if s.member_id == access.member_id and s.submitted_at is not None}
    warnings = warnings_for(evaluation, sheets)
    if access.role != SUPERVISOR:
        warnings = [w for w in warnings if w["bid_opening_id"] in mine]
    clarifications = db.session.scalars(select(Clarification).where(Clarification.evaluation_id == evaluation.id)
                                        .order_by(Clarification.id))
    disputes = db.session.scalars(select(Dispute).where(Dispute.evaluation_id == evaluation.id).order_by(Dispute.id))
    present_ids = set(present)
    return {
        "evaluation_id": evaluation.id, "tender_id": evaluation.tender_id, "tender_code": evaluation.tender.code,
        "tender_title": evaluation.tender.title,
        "viewer": {"role": access.role, "name": access.name, "member_id": access.member_id,
                   "person_id": access.person_id, "read_only": access.role == SUPERVISOR},
        **status_view(evaluation),
        # default titles are catalogue msgids (criteria.N_), shown in the viewer's language; others as written
        "criteria": [{**c, "title": gettext(c["title"])} for c in criteria],
        "bids": [bid_view(b, evaluation) for b in bid_openings(evaluation.tender_id)],
        **members_view(evaluation, present_ids),
        "chair": chair_view(evaluation, access),
        "progress": [progress_view(s, criteria) for s in sheets],
        "sheets": [sheet_view(s) for s in sheets if may_see(s, access, mine)],
        "clarifications": [clarification_view(c) for c in clarifications],
        "disputes": [dispute_view(d) for d in disputes],
        "warnings": warnings,
        "summary": {"text": evaluation.summary, "at": iso(evaluation.summary_at)},
        "complete": evaluation.status == EvaluationStatus.COMPLETE, "completed_at": iso(evaluation.completed_at),
    }
