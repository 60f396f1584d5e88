"""The opening record's steps (开标记录): build, confirm or object (异议), answer, close the window, sign.

Flow: the host builds the record once every bid is decrypted or failed with a decided cause; each
bidder confirms it or raises objections within the window (default 15 minutes); silence at the
window's end counts as no objection and is recorded as such; the host answers every objection; then
the PDF is prepared with two empty signature fields, and the host and a supervisor each upload their
signed revision (:func:`accept_signature`). With both signatures the record is published and the
opening closes. Every step is audited and sent to the hall as ``hall.record``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from bidding import hall_events, opening
from bidding.errors import NotABidder
from bidding.opening_draws import verify_draw
from bidding.opening_handoff import handoff_check
from bidding.opening_models import OpeningPhase, ParticipantRole
from bidding.opening_record import bidders_of, build_rows, collect_sources, rows_digest
from bidding.record_models import (
    DEFAULT_CONFIRM_MINUTES,
    MAX_CONFIRM_MINUTES,
    MIN_CONFIRM_MINUTES,
    OpeningRecord,
    RecordConfirmation,
    RecordObjection,
    RecordStatus,
    ResponseKind,
)
from bidding.record_pdf import FIELD_OF_ROLE, prepare_record_pdf
from bidding.record_signing import check_revision
from bidding.sealed_checks import lock_tender
from core import audit
from core.actor import Actor
from core.clock import as_utc, now
from core.db import db
from core.errors import Forbidden, NotFound, RuleViolation, ValidationFailed
from core.identity.ca import CertificateRefused, load_ca_certificate, verify_certificate
from core.identity.models import Organisation, Role
from core.storage import default_store

MAX_TEXT = 4000
MAX_ATTACHMENT = 10 * 1024 * 1024


class RecordRefused(RuleViolation):
    code = "record_refused"
    default_message = _l("This step of the opening record is not possible now.")


def get_record(tender_id: int) -> OpeningRecord | None:
    return db.session.scalar(select(OpeningRecord).where(OpeningRecord.tender_id == tender_id))


def require_record(tender_id: int) -> OpeningRecord:
    record = get_record(tender_id)
    if record is None:
        raise NotFound(_l("The opening record of this tender has not been built yet."), code="no_record")
    return record


def confirm_minutes(minutes: int | None) -> int:
    """The confirmation window: 5 to 60 minutes; default ``EBID_RECORD_WINDOW_MINUTES`` or 15."""
    value = minutes if minutes is not None else int(current_app.config.get("EBID_RECORD_WINDOW_MINUTES",
                                                                           DEFAULT_CONFIRM_MINUTES))
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_CONFIRM_MINUTES <= value <= MAX_CONFIRM_MINUTES:
        raise ValidationFailed(_l("The confirmation window is a whole number of minutes from %(min)s to %(max)s."),
                               code="window_out_of_range", min=MIN_CONFIRM_MINUTES, max=MAX_CONFIRM_MINUTES)
    return value


def _emit(record: OpeningRecord, event: str, **data: Any) -> None:
    hall_events.emit(record.tender_id, "hall.record", {"event": event, "status": record.status.value,
                                                       "version": record.version, **data})


def _extras(tender_id: int) -> dict[str, Any]:
    """Draws (with their recomputation), the final tree head and the hand-off check, frozen with the rows."""
    draws = []
    for d in opening.draws(tender_id):
        if d.get("seed") is None:
            continue
        check = verify_draw(tender_id, d["name"])
        draws.append({**d, "verified": check.ok})
    handoff = handoff_check(tender_id)
    return {"draws": draws, "final_head": {"size": handoff.final_tree_size, "root": handoff.root_hash},
            "handoff": {"ok": handoff.ok, "message": str(handoff.message or "")}}


def build_record(actor: Actor, tender_id: int, *, window_minutes: int | None = None) -> OpeningRecord:
    """Build the record from the opened bids and open the confirmation window (the host)."""
    tender = lock_tender(tender_id)
    opening.require_role(actor, tender, ParticipantRole.HOST)
    minutes = confirm_minutes(window_minutes)
    if get_record(tender_id) is not None:
        raise RecordRefused(_l("The opening record was already built; bidders are answering it."),
                            code="record_exists")
    session = opening.get_session(tender_id)
    if session is None or session.phase not in (OpeningPhase.DECRYPTED, OpeningPhase.RECORD):
        raise RecordRefused(_l("The record is built after the decryption: every bid must be decrypted or have "
                               "failed (phase now: %(phase)s)."), code="wrong_phase",
                            phase=session.phase.value if session else "-")
    rows = build_rows(collect_sources(tender))
    if session.phase == OpeningPhase.DECRYPTED:
        opening.enter_record(actor, tender_id)
    at = now()
    record = OpeningRecord(tender_id=tender_id, rows=rows, sha256=rows_digest(rows), extras=_extras(tender_id),
                           built_by_id=actor.person_id, built_at=at, window_minutes=minutes,
                           window_ends_at=at + timedelta(minutes=minutes), status=RecordStatus.CONFIRMING)
    db.session.add(record)
    db.session.flush()
    audit.record(actor, "opening_record.built", "tender", tender_id,
                 {"sha256": record.sha256, "rows": len(rows), "window_minutes": minutes})
    _emit(record, "built", sha256=record.sha256, window_ends_at=as_utc(record.window_ends_at).isoformat())
    return record


def _bidder_of(actor: Actor, record: OpeningRecord) -> str:
    if actor.role != Role.BIDDER or actor.organisation_uscc not in bidders_of(record.rows):
        raise NotABidder(_l("Only the bidders in this opening record confirm it or object to it; act for your "
                            "organisation."))
    return actor.organisation_uscc


def _open_window(record: OpeningRecord) -> None:
    if record.status != RecordStatus.CONFIRMING or now() >= as_utc(record.window_ends_at):
        raise RecordRefused(_l("The confirmation window of the record ended at %(at)s; it can no longer be "
                               "confirmed or objected to."), code="window_closed",
                            at=as_utc(record.window_ends_at).isoformat())


def _response(record: OpeningRecord, organisation_id: int) -> RecordConfirmation | None:
    return next((r for r in record.responses if r.organisation_id == organisation_id), None)


def confirm(actor: Actor, tender_id: int) -> RecordConfirmation:
    """A bidder confirms the record (无异议); final, and refused once the bidder has objected."""
    lock_tender(tender_id)
    record = tick(tender_id)
    _bidder_of(actor, record)
    _open_window(record)
    existing = _response(record, actor.organisation_id)
    if existing is not None:
        raise RecordRefused(_l("Your organisation already answered the record (%(kind)s)."), code="already_answered",
                            kind=existing.kind.value)
    row = RecordConfirmation(record=record, organisation_id=actor.organisation_id, person_id=actor.person_id,
                             kind=ResponseKind.CONFIRMED, rows_sha256=record.sha256, at=now())
    db.session.add(row)
    db.session.flush()
    audit.record(actor, "opening_record.confirmed", "tender", tender_id, {"sha256": record.sha256})
    _emit(record, "confirmed", bidder=actor.organisation_uscc)
    _close_when_all_answered(record)
    return row


def raise_objection(actor: Actor, tender_id: int, text: str, attachment: tuple[str, bytes] | None = None
                    ) -> RecordObjection:
    """A bidder objects to the record (异议) with a text and an optional attachment, within the window."""
    lock_tender(tender_id)
    record = tick(tender_id)
    _bidder_of(actor, record)
    _open_window(record)
    text = (text or "").strip()
    if not text or len(text) > MAX_TEXT:
        raise ValidationFailed(_l("Write the objection: 1 to %(n)s characters."), code="objection_text", n=MAX_TEXT)
    existing = _response(record, actor.organisation_id)
    if existing is not None and existing.kind == ResponseKind.CONFIRMED:
        raise RecordRefused(_l("Your organisation already confirmed the record; a confirmation is final."),
                            code="already_confirmed")
    row = RecordObjection(record=record, organisation_id=actor.organisation_id, person_id=actor.person_id,
                          text=text, raised_at=now())
    if attachment is not None:
        name, data = attachment
        if not data or len(data) > MAX_ATTACHMENT:
            raise ValidationFailed(_l("An attachment must hold 1 byte to %(n)s MiB."), code="attachment_size",
                                   n=MAX_ATTACHMENT // (1024 * 1024))
        row.attachment_sha256, row.attachment_size = default_store().put_bytes(data)
        row.attachment_name = (name or "attachment").replace("/", "_").replace("\\", "_")[-200:]
    if existing is None:
        db.session.add(RecordConfirmation(record=record, organisation_id=actor.organisation_id,
                                          person_id=actor.person_id, kind=ResponseKind.OBJECTED,
                                          rows_sha256=record.sha256, at=now()))
    db.session.add(row)
    db.session.flush()
    audit.record(actor, "opening_record.objection", "tender", tender_id,
                 {"objection_id": row.id, "attachment_sha256": row.attachment_sha256})
    _emit(record, "objection", objection=objection_payload(row))
    _close_when_all_answered(record)
    return row


def answer_objection(actor: Actor, tender_id: int, objection_id: int, text: str) -> RecordObjection:
    """The host answers an objection (answers are final and go into the record)."""
    tender = lock_tender(tender_id)
    opening.require_role(actor, tender, ParticipantRole.HOST)
    record = tick(tender_id)
    row = next((o for o in record.objections if o.id == objection_id), None)
    if row is None:
        raise NotFound(_l("This record has no objection %(id)s."), code="no_objection", id=objection_id)
    if row.answered_at is not None:
        raise RecordRefused(_l("This objection was already answered."), code="already_answered")
    text = (text or "").strip()
    if not text or len(text) > MAX_TEXT:
        raise ValidationFailed(_l("Write the answer: 1 to %(n)s characters."), code="answer_text", n=MAX_TEXT)
    row.answer, row.answered_by_id, row.answered_at = text, actor.person_id, now()
    db.session.flush()
    audit.record(actor, "opening_record.answered", "tender", tender_id, {"objection_id": row.id})
    _emit(record, "answered", objection=objection_payload(row))
    _prepare_when_ready(actor, record)
    return row


def _close_when_all_answered(record: OpeningRecord) -> None:
    answered = {r.organisation_id for r in record.responses}
    if len(answered) == len(bidders_of(record.rows)):
        _close_window(Actor.system(source="opening-record"), record)


def _close_window(actor: Actor, record: OpeningRecord) -> None:
    """End the window: every bidder without an answer is recorded as silent (no objection)."""
    if record.status != RecordStatus.CONFIRMING:
        return
    answered = {r.organisation_id for r in record.responses}
    at = now()
    silent = []
    for uscc in sorted(bidders_of(record.rows)):
        org = db.session.scalar(select(Organisation).where(Organisation.uscc == uscc))
        if org is not None and org.id not in answered:
            db.session.add(RecordConfirmation(record=record, organisation_id=org.id, person_id=None,
                                              kind=ResponseKind.SILENT, rows_sha256=record.sha256, at=at))
            silent.append(uscc)
    record.window_closed_at = at
    record.status = RecordStatus.ANSWERING
    db.session.flush()
    audit.record(actor, "opening_record.window_closed", "tender", record.tender_id, {"silent": silent})
    _emit(record, "window_closed", silent=silent)
    _prepare_when_ready(actor, record)


def _prepare_when_ready(actor: Actor, record: OpeningRecord) -> None:
    """Once the window is over and every objection answered, set the PDF with its two empty fields."""
    if record.status != RecordStatus.ANSWERING or any(o.answered_at is None for o in record.objections):
        return
    pdf = prepare_record_pdf(document(record))
    record.prepared_sha256, record.pdf_size = default_store().put_bytes(pdf)
    record.pdf_sha256 = record.prepared_sha256
    record.status = RecordStatus.SIGNING
    db.session.flush()
    audit.record(actor, "opening_record.prepared", "tender", record.tender_id, {"pdf_sha256": record.pdf_sha256})
    _emit(record, "prepared", pdf_sha256=record.pdf_sha256)


def tick(tender_id: int) -> OpeningRecord:
    """Bring the record up to date with the clock (close a window that is due); idempotent."""
    record = require_record(tender_id)
    if record.status == RecordStatus.CONFIRMING and now() >= as_utc(record.window_ends_at):
        _close_window(Actor.system(source="opening-record"), record)
    return record


def current_pdf(record: OpeningRecord) -> bytes:
    if record.pdf_sha256 is None:
        raise RecordRefused(_l("The record's PDF is prepared when the confirmation window is over and every "
                               "objection is answered."), code="pdf_not_ready")
    return default_store().read_bytes(record.pdf_sha256)


def accept_signature(actor: Actor, tender_id: int, pdf: bytes) -> OpeningRecord:
    """Accept the host's or the supervisor's signed revision; publish the record when both have signed."""
    tender = lock_tender(tender_id)
    role = opening.role_of(tender, actor.person_id)
    if role not in FIELD_OF_ROLE:
        raise Forbidden(_l("Only the opening's host and supervisors sign the record."), code="not_a_signer")
    record = tick(tender_id)
    if record.status != RecordStatus.SIGNING:
        raise RecordRefused(_l("The record is not waiting for signatures (it is %(status)s)."),
                            code="not_signing", status=record.status.value)
    if getattr(record, f"{role}_signed_at") is not None:
        raise RecordRefused(_l("The %(role)s's signature is already on the record."), code="already_signed", role=role)
    new = check_revision(current_pdf(record), pdf, FIELD_OF_ROLE[role], load_ca_certificate())
    try:
        cert = verify_certificate(new.certificate.public_bytes(serialization.Encoding.PEM))
    except CertificateRefused as exc:
        audit.record(actor, "opening_record.signature_refused", "tender", tender_id, {"reason": exc.code})
        raise
    if cert.person_id != actor.person_id:
        raise Forbidden(_l("The signing certificate belongs to someone else; sign with your own certificate."),
                        code="not_your_certificate")
    at = now()
    record.pdf_sha256, record.pdf_size = default_store().put_bytes(pdf)
    setattr(record, f"{role}_certificate_id", cert.id)
    setattr(record, f"{role}_signed_at", at)
    db.session.flush()
    audit.record(actor, "opening_record.signed", "tender", tender_id,
                 {"role": role, "certificate_serial": cert.serial, "pdf_sha256": record.pdf_sha256})
    _emit(record, "signed", role=role, pdf_sha256=record.pdf_sha256)
    if record.host_signed_at is not None and record.supervisor_signed_at is not None:
        record.status, record.published_at = RecordStatus.PUBLISHED, at
        db.session.flush()
        audit.record(actor, "opening_record.published", "tender", tender_id, {"pdf_sha256": record.pdf_sha256})
        opening.close_opening(actor, tender_id)
        _emit(record, "published", pdf_sha256=record.pdf_sha256)
    return record


def objection_payload(o: RecordObjection) -> dict[str, Any]:
    return {"id": o.id, "bidder": o.organisation.name if o.organisation else None,
            "uscc": o.organisation.uscc if o.organisation else None, "text": o.text,
            "attachment": {"name": o.attachment_name, "sha256": o.attachment_sha256, "size": o.attachment_size}
            if o.attachment_sha256 else None,
            "raised_at": as_utc(o.raised_at).isoformat(), "answer": o.answer,
            "answered_at": as_utc(o.answered_at).isoformat() if o.answered_at else None}


def document(record: OpeningRecord) -> dict[str, Any]:
    """Everything the PDF prints, as plain data."""
    tender = record.tender
    return {"tender": {"code": tender.code, "title": tender.title, "tenderer": tender.tenderer.name,
                       "opening_at": as_utc(tender.bid_deadline_at).isoformat()},
            "lots": [{"code": lot.code, "title": lot.title} for lot in tender.lots],
            "version": record.version, "built_at": as_utc(record.built_at).isoformat(), "rows": record.rows,
            "rows_sha256": record.sha256, **record.extras,
            "responses": [{"bidder": r.organisation.name, "uscc": r.organisation.uscc, "kind": r.kind.value,
                           "at": as_utc(r.at).isoformat()} for r in record.responses],
            "objections": [objection_payload(o) for o in record.objections]}


def record_view(record: OpeningRecord, person_id: int | None = None) -> dict[str, Any]:
    """The record as the API and the hall show it (``my_field``: the field this person signs, if any)."""
    role = opening.role_of(record.tender_id, person_id)
    return {**document(record), "status": record.status.value,
            "window_ends_at": as_utc(record.window_ends_at).isoformat(),
            "window_closed_at": as_utc(record.window_closed_at).isoformat() if record.window_closed_at else None,
            "pdf_sha256": record.pdf_sha256, "host_signed_at": _iso(record.host_signed_at),
            "supervisor_signed_at": _iso(record.supervisor_signed_at), "published_at": _iso(record.published_at),
            "my_field": FIELD_OF_ROLE.get(role) if role else None}


def _iso(value) -> str | None:
    return as_utc(value).isoformat() if value else None
