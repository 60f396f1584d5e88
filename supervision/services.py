"""What a supervisor may change: a tender's suspension (条例 §62) and complaint decisions (投诉, 条例 §§60–61).

Everything else a supervisor does is reading. A hold suspends the procedure at whatever stage it is:
transitions wait (``bidding.lifecycle``), the opening refuses its steps and its beat leaves the tender
alone, the scoring room refuses every write, the award waits; when the hold is lifted, an opening's
decryption window is extended by the time it was held. Bidders file complaints only about matters
they objected to first; the complaint's time limits are counted in working days.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from bidding import translog
from bidding.models import Objection, ObjectionStatus, Tender
from bidding.opening_models import BidOpening, OpeningPhase, OpeningSession
from bidding.policy import clean_text
from bidding.receipts import epoch_ms
from bidding.record_models import OpeningRecord, RecordObjection
from core import audit
from core.actor import Actor
from core.clock import as_utc, beijing, now
from core.db import db, locked_scalars
from core.errors import Forbidden, NotFound, RuleViolation, ValidationFailed
from core.identity.models import Role
from core.notifications import members as org_members
from core.notifications import notify, supervisors
from core.storage import default_store
from evaluation.result_models import ResultObjection
from supervision import rules
from supervision.models import Complaint, ComplaintStatus, ObjectionKind

MAX_ATTACHMENT = 20 * 1024 * 1024
OUTCOMES = ("upheld", "dismissed")


class SupervisionRefused(RuleViolation):
    code = "supervision_refused"
    default_message = _l("This cannot be done now.")


def require_supervisor(actor: Actor) -> None:
    if actor.role != Role.SUPERVISOR.value:
        raise Forbidden(_l("Only a supervisor (监督人员) may do this."), code="not_supervisor")


def lock_tender(tender_id: int) -> Tender:
    tender = locked_scalars(select(Tender).where(Tender.id == tender_id), Tender, Tender.id == tender_id).first()
    if tender is None:
        raise NotFound(_l("This tender does not exist."))
    return tender


def _managers(tender: Tender) -> list:
    return org_members([tender.tenderer_id, tender.agency_id], [Role.TENDERER, Role.AGENCY])


def _bidders(tender: Tender) -> list:
    orgs = set(db.session.scalars(select(BidOpening.organisation_id).where(BidOpening.tender_id == tender.id)))
    return org_members(sorted(orgs), [Role.BIDDER])


def _log(tender: Tender, event: str, **fields: Any) -> None:
    clean = {k: str(v) for k, v in fields.items() if v is not None}
    translog.append_event(tender, "committee", event=event, at_ms=epoch_ms(now()), **clean)


# --- suspension (暂停) ---------------------------------------------------------------------------------------

def suspend_tender(actor: Actor, tender_id: int, reason: str) -> Tender:
    """A supervisor suspends the tender's procedure, at any stage, with the reason everyone will read."""
    require_supervisor(actor)
    tender = lock_tender(tender_id)
    if tender.hold_reason is not None:
        raise SupervisionRefused(_l("The tender is already suspended by a supervisor (%(reason)s)."),
                                 code="already_held", reason=tender.hold_reason)
    text = clean_text(reason, "reason", max_length=2000)
    at = now()
    was = tender.is_suspended
    tender.hold_reason, tender.held_at, tender.held_by_id = text, at, actor.person_id
    tender.is_suspended = True
    db.session.flush()
    audit.record(actor, "supervision.suspend", "tender", tender.id,
                 {"reason": text, "status": tender.status.value, "was_suspended": was})
    _log(tender, "tender-suspended", detail=text[:200])
    notify(_managers(tender) + _bidders(tender), kind="tender_suspended", object_type="tender", object_id=tender.id,
           subject=_l("The supervisor suspended the procedure of %(tender)s."), body=_l("Reason: %(reason)s"),
           tender=tender.code, reason=text)
    return tender


def resume_tender(actor: Actor, tender_id: int) -> Tender:
    """A supervisor lifts the hold; pending objections (if any) keep the procedure suspended."""
    require_supervisor(actor)
    tender = lock_tender(tender_id)
    if tender.hold_reason is None:
        raise SupervisionRefused(_l("The tender is not suspended by a supervisor."), code="not_held")
    at = now()
    held_for = at - as_utc(tender.held_at) if tender.held_at else timedelta(0)
    pending = db.session.scalar(select(func.count()).select_from(Objection).where(
        Objection.tender_id == tender.id, Objection.status == ObjectionStatus.PENDING))
    tender.hold_reason = tender.held_at = tender.held_by_id = None
    tender.is_suspended = bool(pending)
    session = db.session.get(OpeningSession, tender.id)
    extended = None
    if session is not None and session.phase == OpeningPhase.DECRYPTING and session.decryption_deadline \
            and session.window_closed_at is None:
        session.decryption_deadline = as_utc(session.decryption_deadline) + held_for  # the hold does not count
        extended = session.decryption_deadline.isoformat()
    db.session.flush()
    audit.record(actor, "supervision.resume", "tender", tender.id,
                 {"held_seconds": int(held_for.total_seconds()), "still_suspended_by_objections": bool(pending),
                  "decryption_deadline": extended})
    _log(tender, "tender-resumed", detail=f"held {int(held_for.total_seconds())} s")
    notify(_managers(tender) + _bidders(tender), kind="tender_resumed", object_type="tender", object_id=tender.id,
           subject=_l("The supervisor resumed the procedure of %(tender)s."), body=_l("The procedure goes on."),
           tender=tender.code)
    return tender


# --- complaints (投诉) -----------------------------------------------------------------------------------------

def _objection(kind: ObjectionKind, objection_id: int, tender: Tender, organisation_id: int) -> Any:
    """The bidder's own earlier objection, and when it was answered (None: not answered)."""
    if kind == ObjectionKind.DOCUMENTS:
        row = db.session.get(Objection, objection_id)
        ok = row is not None and row.tender_id == tender.id and row.organisation_id == organisation_id
        answered = row.answered_at if ok else None
    elif kind == ObjectionKind.OPENING:
        row = db.session.get(RecordObjection, objection_id)
        record = db.session.get(OpeningRecord, row.record_id) if row is not None else None
        ok = record is not None and record.tender_id == tender.id and row.organisation_id == organisation_id
        answered = row.answered_at if ok else None
    else:
        row = db.session.get(ResultObjection, objection_id)
        ok = row is not None and row.tender_id == tender.id and row.organisation_id == organisation_id
        answered = row.answered_at if ok else None
    if not ok:
        raise ValidationFailed(_l("Name one of your organisation's own objections to this tender: a complaint about "
                                  "the documents, the opening or the result needs an objection first (条例 §60)."),
                               fields={"objection_id": _l("Choose one of your objections.")})
    return row, answered


def _due_answer_passed(kind: ObjectionKind, row: Any) -> bool:
    """An objection left unanswered past its due time also opens the way to a complaint."""
    due = getattr(row, "answer_due_at", None) or getattr(row, "due_at", None)
    return due is not None and now() >= as_utc(due)


def file_complaint(actor: Actor, tender_id: int, objection_kind: str, objection_id: int, text: str,
                   attachment: tuple[str, bytes] | None = None) -> Complaint:
    """A bidder complains (投诉) about a matter it objected to, within 10 days of the answer."""
    if actor.role != Role.BIDDER.value or actor.organisation_id is None:
        raise Forbidden(_l("Only bidders file complaints, acting for their organisation."), code="not_a_bidder")
    tender = lock_tender(tender_id)
    try:
        kind = ObjectionKind(objection_kind)
    except ValueError:
        raise ValidationFailed(_l("Say what the objection was about: documents, opening or result."),
                               fields={"objection_kind": _l("Choose documents, opening or result.")}) from None
    row, answered = _objection(kind, int(objection_id), tender, actor.organisation_id)
    at = now()
    if answered is None and not _due_answer_passed(kind, row):
        raise SupervisionRefused(_l("Your objection is still waiting for its answer; a complaint can be filed once it "
                                    "is answered or its answer is overdue."), code="objection_pending")
    if answered is not None and at > as_utc(answered) + timedelta(days=rules.COMPLAINT_WINDOW_DAYS):
        raise SupervisionRefused(_l("Complaints are filed within %(days)s days of the objection's answer (条例 §60); "
                                    "that time is over."), code="complaint_late", days=rules.COMPLAINT_WINDOW_DAYS)
    body = clean_text(text, "text", max_length=10000)
    complaint = Complaint(tender_id=tender.id, organisation_id=actor.organisation_id, person_id=actor.person_id,
                          objection_kind=kind, objection_id=row.id, text=body, filed_at=at,
                          accept_due=rules.add_working_days(beijing(at).date(), rules.ACCEPT_WORKING_DAYS))
    if attachment is not None:
        name, data = attachment
        if len(data) > MAX_ATTACHMENT:
            raise ValidationFailed(_l("The attachment is larger than 20 MiB; attach a smaller file."),
                                   fields={"attachment": _l("At most 20 MiB.")})
        complaint.attachment_name = clean_text(name, "attachment", max_length=200)
        complaint.attachment_sha256, complaint.attachment_size = default_store().put_bytes(data)
    db.session.add(complaint)
    db.session.flush()
    audit.record(actor, "complaint.filed", "tender", tender.id,
                 {"complaint_id": complaint.id, "objection": [kind.value, row.id],
                  "accept_due": complaint.accept_due.isoformat(), "attachment_sha256": complaint.attachment_sha256})
    notify(supervisors(), kind="complaint", object_type="tender", object_id=tender.id,
           subject=_l("A complaint about %(tender)s: accept or reject it by %(due)s."),
           body=_l("%(bidder)s complains about a matter it objected to."), tender=tender.code,
           due=complaint.accept_due.isoformat(), bidder=complaint.organisation.name if complaint.organisation else "")
    return complaint


def _complaint(complaint_id: int) -> Complaint:
    complaint = db.session.get(Complaint, complaint_id)
    if complaint is None:
        raise NotFound(_l("This complaint does not exist."))
    return complaint


def accept_complaint(actor: Actor, complaint_id: int, accept: bool, note: str) -> Complaint:
    """A supervisor accepts (受理) or rejects (不予受理) a complaint, with a note; within 3 working days."""
    require_supervisor(actor)
    complaint = _complaint(complaint_id)
    lock_tender(complaint.tender_id)
    db.session.refresh(complaint)
    if complaint.status != ComplaintStatus.FILED:
        raise SupervisionRefused(_l("This complaint was already %(status)s."), code="already_handled",
                                 status=complaint.status.value)
    at = now()
    complaint.acceptance_note = clean_text(note, "note", max_length=4000)
    complaint.handled_by_id = actor.person_id
    complaint.accepted_at = at
    if accept:
        complaint.status = ComplaintStatus.ACCEPTED
        complaint.decide_due = rules.add_working_days(beijing(at).date(), rules.DECIDE_WORKING_DAYS)
    else:
        complaint.status = ComplaintStatus.REJECTED
    db.session.flush()
    late = beijing(at).date() > complaint.accept_due
    audit.record(actor, "complaint.accepted" if accept else "complaint.rejected", "tender", complaint.tender_id,
                 {"complaint_id": complaint.id, "note": complaint.acceptance_note, "late": late,
                  "decide_due": complaint.decide_due.isoformat() if complaint.decide_due else None})
    notify(org_members([complaint.organisation_id], [Role.BIDDER]), kind="complaint_accepted", object_type="tender",
           object_id=complaint.tender_id,
           subject=_l("Your complaint was accepted; the decision is due by %(due)s.") if accept
           else _l("Your complaint was not accepted."),
           body=_l("Note: %(note)s"), due=complaint.decide_due.isoformat() if complaint.decide_due else "",
           note=complaint.acceptance_note)
    return complaint


def decide_complaint(actor: Actor, complaint_id: int, outcome: str, decision: str) -> Complaint:
    """A supervisor decides an accepted complaint (upheld or dismissed); the decision is published."""
    require_supervisor(actor)
    complaint = _complaint(complaint_id)
    tender = lock_tender(complaint.tender_id)
    db.session.refresh(complaint)
    if complaint.status != ComplaintStatus.ACCEPTED:
        raise SupervisionRefused(_l("Only an accepted complaint is decided (this one is %(status)s)."),
                                 code="not_accepted", status=complaint.status.value)
    if outcome not in OUTCOMES:
        raise ValidationFailed(_l("Decide upheld or dismissed."), fields={"outcome": _l("Choose upheld or dismissed.")})
    at = now()
    complaint.decision = clean_text(decision, "decision", max_length=20000)
    complaint.outcome, complaint.decided_at, complaint.status = outcome, at, ComplaintStatus.DECIDED
    complaint.handled_by_id = actor.person_id
    db.session.flush()
    audit.record(actor, "complaint.decided", "tender", tender.id,
                 {"complaint_id": complaint.id, "outcome": outcome, "late": beijing(at).date() > complaint.decide_due})
    notify(_managers(tender) + org_members([complaint.organisation_id], [Role.BIDDER]), kind="complaint_decided",
           object_type="tender", object_id=tender.id,
           subject=_l("The complaint about %(tender)s is decided: %(outcome)s."), body=_l("%(decision)s"),
           tender=tender.code, outcome=outcome, decision=complaint.decision)
    return complaint


def complaints_of(tender_id: int | None = None, *, published_only: bool = False) -> list[Complaint]:
    stmt = select(Complaint).order_by(Complaint.filed_at.desc(), Complaint.id.desc())
    if tender_id is not None:
        stmt = stmt.where(Complaint.tender_id == tender_id)
    if published_only:
        stmt = stmt.where(Complaint.status.in_([ComplaintStatus.DECIDED, ComplaintStatus.REJECTED]))
    return list(db.session.scalars(stmt))
