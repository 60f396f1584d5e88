"""The online opening session (不见面开标): host and supervisors, check-in, the decryption window, reads.

Steps of DOMAIN §5: the tenderer or agency names the host (主持人) and supervisors (监督人); bidders
check in (签到) with a valid certificate; the host starts the decryption window; bids are decrypted
(:mod:`bidding.opening_decrypt`); the record follows (:mod:`bidding.opening_record`). The host acts only
through these functions; supervisors only read, and agree on failure causes. Every change is audited
and announced to the hall (:mod:`bidding.hall_events`). Nobody sees any bid content before its
decryption succeeded: :func:`board` gives the opening-form data only for decrypted bids.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from blinker import Namespace
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import contains_eager, selectinload

from bidding import hall_events
from bidding.errors import NotABidder, TransitionRefused
from bidding.models import Lot, Tender, TenderStatus
from bidding.opening_models import (
    DEFAULT_WINDOW_MINUTES,
    MAX_WINDOW_MINUTES,
    MIN_WINDOW_MINUTES,
    Announcement,
    BidOpening,
    BidOpeningStatus,
    CheckIn,
    OpeningParticipant,
    OpeningPhase,
    OpeningSession,
    ParticipantRole,
    RandomDraw,
    ShareRelease,
)
from bidding.policy import require_manager
from bidding.sealed_checks import lock_tender
from bidding.sealed_models import Bid, OpeningKeyShare, TenderLog
from core import audit
from core.actor import Actor
from core.clock import as_utc, beijing, now
from core.db import db
from core.errors import Forbidden, NotFound, ValidationFailed
from core.i18n import N_
from core.identity.ca import CertificateRefused, verify_certificate
from core.identity.models import Certificate, Organisation, Person, Role, RoleGrant

OPEN_STATUSES = (TenderStatus.OPENING, TenderStatus.EVALUATION, TenderStatus.PUBLICITY, TenderStatus.AWARDED)


class OpeningRefused(TransitionRefused):
    code = "opening_refused"
    default_message = _l("This opening step is not possible now.")

# Sent inside the transaction that closes an opening (the record is published); receivers queue work
# with core.tasks.enqueue so that it runs after the commit.
opening_closed = Namespace().signal("opening-closed")


def get_session(tender_id: int) -> OpeningSession | None:
    """The tender's opening session, or None before the tender reached the opening."""
    return db.session.get(OpeningSession, tender_id)


def opened_lot_codes(tender: Tender) -> set[str]:
    """Lots with at least three bids at the deadline: the only ones opened (招标投标法 §28)."""
    log = db.session.get(TenderLog, tender.id)
    lots = (log.closing or {}).get("lots", {}) if log is not None else {}
    return {code for code, v in lots.items() if v.get("opened")}


def ensure_session(tender: Tender) -> OpeningSession:
    """Create the session and one :class:`BidOpening` per current bid of an opened lot (idempotent)."""
    session = get_session(tender.id)
    if session is not None:
        return session
    if tender.status not in OPEN_STATUSES:
        raise OpeningRefused(_l("Tender %(tender)s is not at its opening: its status is %(status)s."),
                             code="not_opening", tender=tender.code, status=tender.status.value)
    window = int((tender.evaluation_method or {}).get("decryption_window_minutes") or DEFAULT_WINDOW_MINUTES)
    session = OpeningSession(tender_id=tender.id, phase=OpeningPhase.CHECKIN, window_minutes=window)
    db.session.add(session)
    opened = opened_lot_codes(tender)
    rows = db.session.execute(select(Bid, Lot.code).join(Lot, Lot.id == Bid.lot_id)
                              .where(Bid.tender_id == tender.id, Bid.is_current.is_(True)).order_by(Bid.id)).all()
    for bid, code in rows:
        if code in opened:
            db.session.add(BidOpening(tender_id=tender.id, bid_id=bid.id, lot_id=bid.lot_id,
                                      organisation_id=bid.organisation_id, status=BidOpeningStatus.PENDING))
    db.session.flush()
    return session


def _open_session(tender_id: int) -> tuple[Tender, OpeningSession]:
    """Lock the tender (first statement of the transaction) and return it with its session."""
    tender = lock_tender(tender_id)
    if tender.hold_reason is not None:
        raise OpeningRefused(_l("A supervisor suspended this tender's procedure (%(reason)s); the opening waits until "
                                "the supervisor resumes it."), code="tender_held", reason=tender.hold_reason)
    return tender, ensure_session(tender)


def role_of(tender: Tender | int, person_id: int | None) -> str | None:
    """``"host"``, ``"supervisor"`` or None: the person's part in this tender's opening."""
    tender_id = tender if isinstance(tender, int) else tender.id
    if person_id is None:
        return None
    role = db.session.scalar(select(OpeningParticipant.role).where(OpeningParticipant.tender_id == tender_id,
                                                                   OpeningParticipant.person_id == person_id))
    return role.value if role else None


def participants(tender_id: int) -> list[OpeningParticipant]:
    return list(db.session.scalars(select(OpeningParticipant).where(OpeningParticipant.tender_id == tender_id)
                                   .options(selectinload(OpeningParticipant.person))
                                   .order_by(OpeningParticipant.role, OpeningParticipant.id)))


def require_role(actor: Actor, tender: Tender, role: ParticipantRole) -> None:
    """Raise Forbidden unless the actor is named for ``role`` in this tender's opening."""
    if role_of(tender, actor.person_id) != role.value:
        raise Forbidden(_l("Only the opening's %(role)s may do this; the tenderer or agency names them."),
                        code=f"not_{role.value}", role=role.value)


def _has_grant(person: Person, roles: set[Role], organisation_ids: set[int | None] | None = None) -> bool:
    return any(g.role in roles and (organisation_ids is None or g.organisation_id in organisation_ids)
               for g in db.session.scalars(select(RoleGrant).where(RoleGrant.person_id == person.id)))


def check_window(minutes: int | None) -> int:
    """The decryption window in minutes: 15 to 60 (DOMAIN §5 step 5), 30 when not given."""
    value = DEFAULT_WINDOW_MINUTES if minutes is None else minutes
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_WINDOW_MINUTES <= value <= MAX_WINDOW_MINUTES:
        raise ValidationFailed(_l("The decryption window is %(min)s to %(max)s minutes."), code="window_out_of_range",
                               fields={"window_minutes": [_l("Give a whole number of minutes from 15 to 60.")]},
                               min=MIN_WINDOW_MINUTES, max=MAX_WINDOW_MINUTES)
    return value


def name_participants(actor: Actor, tender_id: int, *, host_id: int, supervisor_ids: list[int],
                      window_minutes: int | None = None) -> OpeningSession:
    """Name the host and the supervisors, and set the window (tenderer or agency staff, before the start)."""
    tender, session = _open_session(tender_id)
    require_manager(actor, tender)
    if session.phase != OpeningPhase.CHECKIN:
        raise OpeningRefused(_l("Decryption has started: the host and supervisors can no longer be changed."),
                             code="opening_started")
    host = db.session.get(Person, host_id)
    if host is None or not _has_grant(host, {Role.TENDERER, Role.AGENCY}, {tender.tenderer_id, tender.agency_id}):
        raise ValidationFailed(_l("The host must be a staff member of the tenderer or the agency of this tender."),
                               code="host_not_staff", fields={"host_id": [_l("Choose a staff member.")]})
    supervisors = [db.session.get(Person, i) for i in dict.fromkeys(supervisor_ids)]
    if not supervisors or any(p is None or not _has_grant(p, {Role.SUPERVISOR}) or p.id == host.id
                              for p in supervisors):
        raise ValidationFailed(_l("Name at least one supervisor: persons with the supervisor role, not the host."),
                               code="supervisor_required", fields={"supervisor_ids": [_l("Choose supervisors.")]})
    session.window_minutes = check_window(window_minutes if window_minutes is not None else session.window_minutes)
    for row in participants(tender.id):
        db.session.delete(row)
    db.session.flush()
    db.session.add(OpeningParticipant(tender_id=tender.id, person_id=host.id, role=ParticipantRole.HOST,
                                      named_by_id=actor.person_id or host.id))
    for p in supervisors:
        db.session.add(OpeningParticipant(tender_id=tender.id, person_id=p.id, role=ParticipantRole.SUPERVISOR,
                                          named_by_id=actor.person_id or host.id))
    db.session.flush()
    audit.record(actor, "opening.participants", "tender", tender.id, {
        "host": host.id, "supervisors": [p.id for p in supervisors], "window_minutes": session.window_minutes})
    hall_events.emit(tender.id, "hall.phase", phase_payload(session))
    return session


def _certificate_for(actor: Actor, at: datetime) -> Certificate | None:
    rows = db.session.scalars(select(Certificate).where(
        ((Certificate.person_id == actor.person_id) | (Certificate.organisation_id == actor.organisation_id)),
        Certificate.revoked_at.is_(None)).order_by(Certificate.not_before.desc(), Certificate.id.desc()))
    for cert in rows:
        if cert.organisation_id not in (None, actor.organisation_id):
            continue
        try:
            verify_certificate(cert.pem, at=at)
        except CertificateRefused:
            continue
        return cert
    return None


def check_in(actor: Actor, tender_id: int, *, remote_addr: str | None = None) -> CheckIn:
    """Check in a bidder (签到): a member of an organisation with a current bid, holding a valid certificate."""
    tender, session = _open_session(tender_id)
    if actor.role != Role.BIDDER.value or actor.organisation_id is None:
        raise NotABidder()
    if db.session.scalar(select(BidOpening.id).where(BidOpening.tender_id == tender.id,
                                                     BidOpening.organisation_id == actor.organisation_id)) is None:
        raise Forbidden(_l("Your organisation has no bid opened in tender %(tender)s, so it cannot check in."),
                        code="no_bid_opened", tender=tender.code)
    existing = db.session.scalar(select(CheckIn).where(CheckIn.tender_id == tender.id,
                                                       CheckIn.organisation_id == actor.organisation_id))
    if existing is not None:
        return existing
    at = now()
    cert = _certificate_for(actor, at)
    if cert is None:
        raise Forbidden(_l("Check-in needs a valid certificate from the platform CA for you or your organisation; "
                           "none is valid (expired, revoked or never issued)."), code="certificate_required")
    row = CheckIn(tender_id=tender.id, organisation_id=actor.organisation_id, person_id=actor.person_id,
                  certificate_id=cert.id, at=at, remote_addr=remote_addr or actor.source)
    db.session.add(row)
    db.session.flush()
    audit.record(actor, "opening.checkin", "tender", tender.id,
                 {"organisation_id": actor.organisation_id, "certificate": cert.serial})
    hall_events.emit(tender.id, "hall.checkin", checkin_payload(row))
    return row


def start_decryption(actor: Actor, tender_id: int) -> OpeningSession:
    """The host starts the decryption window (解密); refused when started already or nothing can open."""
    tender, session = _open_session(tender_id)
    require_role(actor, tender, ParticipantRole.HOST)
    if tender.status != TenderStatus.OPENING:
        raise OpeningRefused(_l("Tender %(tender)s cannot be opened: its status is %(status)s (no lot has three "
                                "bids; it must be re-tendered)."), code="nothing_to_open", tender=tender.code,
                             status=tender.status.value)
    if session.phase != OpeningPhase.CHECKIN:
        raise OpeningRefused(_l("Decryption was already started at %(at)s."), code="already_started",
                             at=as_utc(session.decryption_started_at).isoformat())
    at = now()
    session.phase = OpeningPhase.DECRYPTING
    session.decryption_started_at = at
    session.decryption_deadline = at + timedelta(minutes=session.window_minutes)
    session.started_by_id = actor.person_id
    db.session.flush()
    audit.record(actor, "opening.start", "tender", tender.id, {
        "window_minutes": session.window_minutes, "deadline": session.decryption_deadline.isoformat()})
    announce(tender.id, "start", N_("Decryption started: %(minutes)s minutes, until %(deadline)s Beijing time."),
             minutes=session.window_minutes,
             deadline=beijing(session.decryption_deadline).strftime("%Y-%m-%d %H:%M:%S"))
    hall_events.emit(tender.id, "hall.phase", phase_payload(session))
    return session


def set_phase(actor: Actor, tender_id: int, target: OpeningPhase, allowed: tuple[OpeningPhase, ...]) -> OpeningSession:
    """Move the session to ``target`` from one of ``allowed`` (the caller checked the rights)."""
    tender, session = _open_session(tender_id)
    if session.phase == target:
        return session
    if session.phase not in allowed:
        raise OpeningRefused(_l("The opening is in phase %(phase)s; this step needs phase %(needed)s."),
                             code="wrong_phase", phase=session.phase.value,
                             needed=" / ".join(p.value for p in allowed))
    old, session.phase = session.phase, target
    at = now()
    if target == OpeningPhase.DECRYPTED:
        session.decrypted_at = at
    if target == OpeningPhase.CLOSED:
        session.closed_at = at
    db.session.flush()
    audit.record(actor, "opening.phase", "tender", tender.id, {"phase": [old.value, target.value]})
    hall_events.emit(tender.id, "hall.phase", phase_payload(session))
    return session


def enter_record(actor: Actor, tender_id: int) -> OpeningSession:
    """The host moves from decryption to the record (唱标) once every bid is decrypted or failed."""
    require_role(actor, db.session.get(Tender, tender_id), ParticipantRole.HOST)
    return set_phase(actor, tender_id, OpeningPhase.RECORD, (OpeningPhase.DECRYPTED,))


def close_opening(actor: Actor, tender_id: int) -> OpeningSession:
    """Close the opening once the record is signed (called by the record's service).

    Sends ``opening_closed`` (sender: the tender id) for the layers above, e.g. the supervisors' screens."""
    session = set_phase(actor, tender_id, OpeningPhase.CLOSED, (OpeningPhase.RECORD,))
    opening_closed.send(tender_id, actor=actor)
    return session


# --- announcements and reads ------------------------------------------------------------------------------

def announce(tender_id: int, kind: str, text: str, **params: Any) -> Announcement:
    """Keep an announcement (English msgid + params, translated when read) and send it to the hall."""
    row = Announcement(tender_id=tender_id, kind=kind, text=text, params={k: str(v) for k, v in params.items()},
                       at=now())
    db.session.add(row)
    db.session.flush()
    hall_events.emit(tender_id, "hall.announcement", announcement_payload(row))
    return row


def announcement_payload(row: Announcement) -> dict[str, Any]:
    return {"id": row.id, "kind": row.kind, "text": gettext(row.text, **row.params), "at": as_utc(row.at).isoformat()}


def announcements(tender_id: int) -> list[dict[str, Any]]:
    rows = db.session.scalars(select(Announcement).where(Announcement.tender_id == tender_id)
                              .order_by(Announcement.id))
    return [announcement_payload(r) for r in rows]


def phase_payload(session: OpeningSession) -> dict[str, Any]:
    deadline = session.decryption_deadline
    return {"phase": session.phase.value, "window_minutes": session.window_minutes,
            "decryption_deadline": as_utc(deadline).isoformat() if deadline else None}


def checkin_payload(row: CheckIn) -> dict[str, Any]:
    return {"organisation": row.organisation.name, "person": row.person.name, "at": as_utc(row.at).isoformat()}


# the columns a board row shows, in the order :func:`_board_payload` takes them
_BOARD_COLUMNS = (BidOpening.id, Lot.code, Organisation.name, BidOpening.status, BidOpening.method,
                  BidOpening.decrypted_at, BidOpening.failure_cause, BidOpening.legal_outcome,
                  BidOpening.cause_decided_at, BidOpening.failure_reason, BidOpening.form)


def _board_payload(bid_id, lot_code, bidder, status, method, decrypted_at, failure_cause, legal_outcome,
                   cause_decided_at, failure_reason, form) -> dict[str, Any]:
    decrypted = status == BidOpeningStatus.DECRYPTED
    failure = None
    if status == BidOpeningStatus.FAILED:
        failure = {"cause": failure_cause.value if failure_cause else None,
                   "outcome": legal_outcome.value if legal_outcome else None,
                   "decided": cause_decided_at is not None, "reason": failure_reason}
    return {"id": bid_id, "lot": lot_code, "bidder": bidder, "status": status.value,
            "method": method.value if method else None,
            "decrypted_at": as_utc(decrypted_at).isoformat() if decrypted_at else None,
            "failure": failure, "form": dict(form or {}) if decrypted else None}


def board_row(row: BidOpening) -> dict[str, Any]:
    """One bid's public state; its opening-form data only once decrypted."""
    return _board_payload(row.id, row.lot.code, row.organisation.name, row.status, row.method, row.decrypted_at,
                          row.failure_cause, row.legal_outcome, row.cause_decided_at, row.failure_reason, row.form)


def opened_bids(tender_id: int) -> list[BidOpening]:
    """The tender's bids in opening order, with their lot and bidder loaded (three queries for any count)."""
    stmt = (select(BidOpening).join(Lot, Lot.id == BidOpening.lot_id).where(BidOpening.tender_id == tender_id)
            .options(contains_eager(BidOpening.lot), selectinload(BidOpening.organisation))
            .order_by(Lot.number, BidOpening.id))
    return list(db.session.scalars(stmt))


def board(tender: Tender) -> list[dict[str, Any]]:
    """Every bid's board row, in opening order: one query of the shown columns (every hall join reads it)."""
    stmt = (select(*_BOARD_COLUMNS).join(Lot, Lot.id == BidOpening.lot_id)
            .join(Organisation, Organisation.id == BidOpening.organisation_id)
            .where(BidOpening.tender_id == tender.id).order_by(Lot.number, BidOpening.id))
    return [_board_payload(*row) for row in db.session.execute(stmt)]


def draws(tender_id: int) -> list[dict[str, Any]]:
    return [draw_payload(d) for d in db.session.scalars(select(RandomDraw).where(RandomDraw.tender_id == tender_id)
                                                         .order_by(RandomDraw.id))]


def draw_payload(d: RandomDraw) -> dict[str, Any]:
    drawn = d.drawn_at is not None
    return {"name": d.name, "choices": list(d.choices), "commitment": d.commitment, "commit_index": d.commit_index,
            "seed": d.seed if drawn else None, "result": d.result if drawn else None,
            "reveal_index": d.reveal_index, "drawn_at": as_utc(d.drawn_at).isoformat() if drawn else None}


def state(tender: Tender, person_id: int | None = None) -> dict[str, Any]:
    """Everything a (re)connecting hall client needs, as the person may see it."""
    session = get_session(tender.id)
    if session is None:
        if tender.status not in OPEN_STATUSES:
            raise NotFound(_l("Tender %(tender)s has not reached its opening."), code="not_opening",
                           tender=tender.code)
        session = ensure_session(tender)
    checkins = db.session.scalars(select(CheckIn).where(CheckIn.tender_id == tender.id).order_by(CheckIn.at))
    shares = db.session.scalars(select(OpeningKeyShare).where(OpeningKeyShare.tender_id == tender.id)).all()
    released = len(db.session.scalars(select(ShareRelease.id).where(ShareRelease.tender_id == tender.id)).all())
    return {"tender_id": tender.id, "tender_code": tender.code, **phase_payload(session),
            "server_time": now().isoformat(), "mode": tender.decryption_mode.value,
            "deadline": as_utc(tender.bid_deadline_at).isoformat() if tender.bid_deadline_at else None,
            "my_role": role_of(tender, person_id),
            "participants": [{"person_id": p.person_id, "name": p.person.name, "role": p.role.value}
                             for p in participants(tender.id)],
            "checkins": [checkin_payload(c) for c in checkins], "board": board(tender),
            "announcements": announcements(tender.id), "draws": draws(tender.id),
            "custodians": {"threshold": shares[0].threshold if shares else None, "count": len(shares),
                           "released": released, "key_rebuilt": session.key_rebuilt_at is not None}}
