"""Flow of the scoring room (评标室): who sits, when scoring begins, and the checks every room write makes.

:func:`members_changed` is called by whatever changes the committee (sign-in with the recusal
declaration, recusal, replacement by an alternate): it tells the room and moves it from signing in to
scoring once every expert seat is taken by a signed-in member. The rest is shared by the room's
services (:mod:`evaluation.room`): the lock, the stage checks, the log entries and the sheet updates.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from bidding import translog
from bidding.models import Tender
from bidding.opening_models import BidOpening, BidOpeningStatus
from bidding.receipts import epoch_ms
from core import audit
from core.actor import Actor
from core.clock import now
from core.db import db, locked_scalars
from core.errors import ValidationFailed
from core.realtime import publish
from evaluation import criteria as C
from evaluation.room_errors import (
    NotChair,
    NotInRoom,
    ReadOnly,
    RoomNotFound,
    RoomRefused,
    RoomSuspended,
    TenderSuspended,
    WrongStage,
)
from evaluation.room_events import (
    CLARIFICATION,
    MEMBERS,
    NAMESPACE,
    PROGRESS,
    SHEET,
    STATUS,
    WARNING,
    person_room,
    room_name,
    supervisor_room,
)
from evaluation.room_models import (
    Clarification,
    ClarificationStatus,
    Evaluation,
    EvaluationStatus,
    ScoreSheet,
)
from evaluation.room_state import (
    SUPERVISOR,
    RoomAccess,
    draw_request_of,
    members_view,
    progress_view,
    room_access,
    seat_count,
    sheet_view,
    sheets_of,
    signed_in_members,
    status_view,
    warnings_for,
)

S = EvaluationStatus
MAX_COMMENT = 2000


def emit(evaluation: Evaluation, event: str, payload: dict[str, Any], room: str | None = None) -> None:
    """Queue ``event`` to the room (or to ``room``, e.g. one viewer's own); sent after the commit."""
    publish(event, {"evaluation_id": evaluation.id, **payload}, room=room or room_name(evaluation.id),
            namespace=NAMESPACE)


def members_changed(evaluation_id: int) -> None:
    """Publish ``room.members``; move SIGNING_IN -> SCORING once every expert seat is signed in.

    The caller flushed its change to the committee and commits afterwards. A suspended room that was
    signing in resumes to scoring instead. Takes the room's lock (the tender row) for the log entry.
    """
    db.session.flush()
    evaluation = lock_room(evaluation_id)
    if evaluation is None:
        return
    emit(evaluation, MEMBERS, members_view(evaluation))
    request = draw_request_of(evaluation.tender_id)
    if request is None or len(signed_in_members(evaluation.tender_id)) < seat_count(request):
        return
    if evaluation.status == S.SIGNING_IN:
        evaluation.status = S.SCORING
    elif evaluation.status == S.SUSPENDED and evaluation.resume_to == S.SIGNING_IN:
        evaluation.resume_to = S.SCORING
    else:
        return
    audit.record(Actor.system("room"), "evaluation.scoring", "evaluation", evaluation.id,
                 {"tender_id": evaluation.tender_id})
    committee_log(evaluation, "scoring")
    db.session.flush()
    emit(evaluation, STATUS, status_view(evaluation))


# --- the checks of every room write -------------------------------------------------------------------

def lock_room(evaluation_id: int) -> Evaluation | None:
    """Lock the evaluation's tender (room writes and their log entries go one at a time), then read the
    evaluation afresh. Take it first in the transaction."""
    tender_of = select(Evaluation.tender_id).where(Evaluation.id == evaluation_id).scalar_subquery()
    locked_scalars(select(Tender).where(Tender.id == tender_of), Tender, Tender.id == tender_of).first()
    return db.session.scalars(select(Evaluation).where(Evaluation.id == evaluation_id)
                              .execution_options(populate_existing=True)).one_or_none()


def require_stage(evaluation: Evaluation, *allowed: EvaluationStatus) -> None:
    """A suspended room (or tender) refuses every write; otherwise the room must be at one of ``allowed``."""
    if evaluation.status == S.SUSPENDED:
        raise RoomSuspended(reason=evaluation.suspended_reason or "-")
    if evaluation.tender.is_suspended:
        raise TenderSuspended()
    if evaluation.status not in allowed:
        raise WrongStage(status=evaluation.status.value, allowed=" / ".join(s.value for s in allowed))


def enter(actor: Actor, evaluation_id: int, *allowed: EvaluationStatus) -> tuple[Evaluation, RoomAccess]:
    """Lock, then check that ``actor`` is a signed-in member (supervisors read only) and the stage."""
    evaluation = lock_room(evaluation_id)
    if evaluation is None:
        raise RoomNotFound()
    access = room_access(actor.person_id, evaluation_id)
    if access is None:
        raise NotInRoom()
    if access.role == SUPERVISOR:
        raise ReadOnly()
    require_stage(evaluation, *allowed)
    return evaluation, access


def require_chair(evaluation: Evaluation, access: RoomAccess) -> None:
    if evaluation.chair_member_id is None or evaluation.chair_member_id != access.member_id:
        raise NotChair()


def record(actor: Actor, action: str, evaluation: Evaluation, **summary: Any) -> None:
    audit.record(actor, f"evaluation.{action}", "evaluation", evaluation.id,
                 {"tender_id": evaluation.tender_id, **summary})


def committee_log(evaluation: Evaluation, event: str, **fields: Any) -> int:
    """Append a ``committee`` entry to the tender's transparency log (members by id: names stay sealed)."""
    clean = {k: str(v) for k, v in fields.items() if v is not None and str(v) != ""}
    return translog.append_event(evaluation.tender, "committee", event=event, at_ms=epoch_ms(now()), **clean)


def expire_due(evaluation_id: int) -> int:
    """Expire the open clarifications past their due time (the bid is evaluated as it stands); return how many."""
    due = select(Clarification).where(Clarification.evaluation_id == evaluation_id,
                                      Clarification.status == ClarificationStatus.OPEN, Clarification.due_at <= now())
    if db.session.scalars(due.limit(1)).first() is None:
        return 0
    evaluation = lock_room(evaluation_id)
    rows = list(db.session.scalars(due.execution_options(populate_existing=True)))
    for c in rows:
        c.status = ClarificationStatus.EXPIRED
        audit.record(Actor.system("room"), "evaluation.clarification_expired", "evaluation", evaluation_id,
                     {"tender_id": evaluation.tender_id, "clarification_id": c.id, "bid_opening_id": c.bid_opening_id})
        committee_log(evaluation, "clarification-expired", bid=c.bid_opening_id, detail=f"clarification {c.id}")
        emit(evaluation, CLARIFICATION, {"id": c.id, "bid_opening_id": c.bid_opening_id, "status": c.status.value,
                                         "answer": None})
    db.session.flush()
    return len(rows)


# --- sheets ------------------------------------------------------------------------------------------

def require_bid(evaluation: Evaluation, bid_opening_id: int) -> BidOpening:
    """A bid of this tender decrypted at the opening (failed ones are not evaluated)."""
    bid = db.session.get(BidOpening, bid_opening_id) if isinstance(bid_opening_id, int) else None
    if bid is None or bid.tender_id != evaluation.tender_id:
        raise ValidationFailed(_l("Choose a bid of this tender."), fields={"bid_opening_id": _l("Unknown bid.")})
    if bid.status != BidOpeningStatus.DECRYPTED:
        raise RoomRefused(_l("This bid was not decrypted at the opening, so it is not evaluated."),
                          code="bid_not_evaluated")
    return bid


def sheet_for(evaluation: Evaluation, member_id: int, bid_opening_id: int, *, create: bool = True
              ) -> ScoreSheet | None:
    sheet = db.session.scalar(select(ScoreSheet).where(ScoreSheet.member_id == member_id,
                                                       ScoreSheet.bid_opening_id == bid_opening_id))
    if sheet is None and create:
        sheet = ScoreSheet(evaluation_id=evaluation.id, member_id=member_id, bid_opening_id=bid_opening_id,
                           values={}, comments={}, revision=0)
    return sheet


def update_sheet(evaluation: Evaluation, sheet: ScoreSheet, values: Any, comments: Any) -> None:
    """Merge checked ``values`` (``""`` or None clears) and ``comments`` into a draft, bump its revision."""
    if sheet.submitted_at is not None:
        raise RoomRefused(_l("This sheet is submitted and final; it can no longer be changed."), code="submitted")
    if not isinstance(values, dict) or not isinstance(comments or {}, dict):
        raise ValidationFailed(_l("Send the values and comments as objects keyed by criterion code."))
    items = C.by_code(evaluation.criteria)
    unknown = sorted(str(k) for k in [*values, *(comments or {})] if k not in items)
    if unknown:
        raise ValidationFailed(_l("Unknown criteria: %(codes)s; use the codes of this evaluation."),
                               codes=", ".join(unknown)[:200])
    merged, notes = dict(sheet.values or {}), dict(sheet.comments or {})
    for code, value in values.items():
        if value is None or value == "":
            merged.pop(code, None)
        else:
            merged[code] = C.check_value(items[code], value)
    for code, text in (comments or {}).items():
        text = str(text or "").strip()
        if len(text) > MAX_COMMENT:
            raise ValidationFailed(_l("A comment may have at most %(n)s characters."), n=MAX_COMMENT,
                                   fields={code: _l("Too long.")})
        if text:
            notes[code] = text
        else:
            notes.pop(code, None)
    sheet.values, sheet.comments, sheet.revision = merged, notes, (sheet.revision or 0) + 1
    sheet.updated_at = now()
    if sheet.id is None:
        db.session.add(sheet)
    db.session.flush()
    emit(evaluation, PROGRESS, {**progress_view(sheet, evaluation.criteria), "at": sheet.updated_at.isoformat()})


def publish_submission(evaluation: Evaluation, sheet: ScoreSheet) -> None:
    """Progress to the room; the sheet only to those who may now see it; deviation warnings to the room."""
    emit(evaluation, PROGRESS, {**progress_view(sheet, evaluation.criteria), "at": sheet.submitted_at.isoformat()})
    bid = sheet.bid_opening_id
    sheets = sheets_of(evaluation.id)
    done = {s.member_id: s for s in sheets if s.bid_opening_id == bid and s.submitted_at is not None}
    persons = {m.id: m.expert.person_id for m in signed_in_members(evaluation.tender_id)}
    for member_id, other in done.items():
        if member_id != sheet.member_id and persons.get(member_id):
            emit(evaluation, SHEET, sheet_view(sheet), room=person_room(persons[member_id]))
            if persons.get(sheet.member_id):
                emit(evaluation, SHEET, sheet_view(other), room=person_room(persons[sheet.member_id]))
    emit(evaluation, SHEET, sheet_view(sheet), room=supervisor_room(evaluation.id))
    warnings = [{k: w[k] for k in ("member_id", "bid_opening_id", "criterion")}
                for w in warnings_for(evaluation, sheets) if w["bid_opening_id"] == bid]
    if warnings:
        emit(evaluation, WARNING, {"bid_opening_id": bid, "warnings": warnings})
