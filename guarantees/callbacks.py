"""Issuer callbacks (出函机构回调): ``Result``, ``Letter``, ``ReleaseNotify``, ``ClaimResult``.

Authenticated only by the message signature (the sender is an issuer's code, its registered
certificate holds the key), then checked per the protocol: timestamp within 300 s, nonce never seen
from that sender (kept in the database), order known and the sender's own. Idempotent per
(order_no, type): a result the order already reflects is *absorbed* (200, nothing changes); a result
that contradicts a final state, or arrives before its predecessor (a ``Letter`` before ``Result``), is
refused with 409 and changes nothing (the issuer retries later). Every applied callback is audited.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from flask_babel import lazy_gettext as _l
from pyhanko.pdf_utils.reader import PdfFileReader
from sqlalchemy import delete, select

from core import audit
from core.actor import Actor
from core.clock import now
from core.db import db
from core.identity.models import Role
from core.storage import default_store
from guarantees import issuer_certs, lifecycle, notices, protocol
from guarantees.lifecycle import OrderState, reached
from guarantees.models import (
    ClaimState,
    GuaranteeClaim,
    GuaranteeOrder,
    OutboundMessage,
    OutboxState,
    SeenNonce,
)
from guarantees.protocol import MalformedMessage, StateConflict
from guarantees.services import issuer_by_code

log = logging.getLogger(__name__)

CALLBACK_TYPES = (protocol.RESULT, protocol.LETTER, protocol.RELEASE_NOTIFY, protocol.CLAIM_RESULT)
MAX_LETTER_BYTES = 20 * 1024 * 1024
APPLIED, ABSORBED = "applied", "absorbed"


class DbNonceStore:
    """The platform's NonceStore: (sender, nonce) rows, unique; purged after the retention period."""

    def remember(self, sender: str, nonce: str, at: datetime) -> bool:
        seen = db.session.scalar(select(SeenNonce.id).where(SeenNonce.sender == sender, SeenNonce.nonce == nonce))
        if seen is not None:
            return False
        db.session.add(SeenNonce(sender=sender, nonce=nonce, seen_at=at))
        db.session.flush()  # a concurrent twin fails here on the unique constraint (refused as a replay)
        return True


def purge_nonces(at: datetime | None = None) -> int:
    """Forget nonces older than twice the retention period (replays that old fail the timestamp check)."""
    cutoff = (at or now()) - timedelta(seconds=2 * protocol.NONCE_RETENTION_SECONDS)
    return db.session.execute(delete(SeenNonce).where(SeenNonce.seen_at < cutoff)).rowcount or 0


@dataclass(frozen=True)
class Outcome:
    type: str
    order_no: str
    result: str  # "applied" or "absorbed"
    state: str
    sender: str
    nonce: str


def _keys_for(raw: dict) -> Callable[[str], list[ec.EllipticCurvePublicKey] | None]:
    """The sender's keys for this message: its current certificate and the one in force at its timestamp."""
    def keys(sender: str) -> list[ec.EllipticCurvePublicKey] | None:
        issuer = issuer_by_code(sender)
        return issuer_certs.message_keys(issuer, protocol.parse_timestamp(raw["timestamp"])) if issuer else None
    return keys


def _order_known(sender: str, order_no: str) -> bool:
    issuer = issuer_by_code(sender)
    return issuer is not None and db.session.scalar(select(GuaranteeOrder.id).where(
        GuaranteeOrder.order_no == order_no, GuaranteeOrder.issuer_id == issuer.id)) is not None


def receive_callback(body: bytes | str) -> Outcome:
    """Check and apply one callback; raise a :class:`protocol.ProtocolError` to refuse it."""
    at = now()
    raw = protocol.parse_body(body)
    try:
        msg = protocol.open_message(raw, key_for_sender=_keys_for(raw), nonces=DbNonceStore(), now=at,
                                    order_known=_order_known, allowed_types=CALLBACK_TYPES)
    except protocol.BadSignature:
        issuer = issuer_by_code(raw["sender"])
        retired = issuer_certs.retired_signer(issuer, raw) if issuer is not None else None
        if retired is not None:
            raise retired from None
        raise
    order = db.session.scalar(select(GuaranteeOrder).where(GuaranteeOrder.order_no == msg.order_no)
                              .with_for_update())
    actor = Actor.system(source=f"issuer:{msg.sender}"[:64])
    result = HANDLERS[msg.type](actor, order, msg.data, at)
    if result == ABSORBED:
        log.info("callback %s for %s absorbed (already applied)", msg.type, msg.order_no)
    db.session.flush()
    return Outcome(msg.type, msg.order_no, result, order.state.value, msg.sender, msg.nonce)


# -- reading data ------------------------------------------------------------------------------------

def _text(data: dict, name: str, max_length: int = 200, *, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise MalformedMessage(f"data.{name} is required")
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise MalformedMessage(f"data.{name} must be text of at most {max_length} characters")
    return value.strip()


def _time(data: dict, name: str) -> datetime:
    value = data.get(name)
    if not isinstance(value, str):
        raise MalformedMessage(f"data.{name} must be a timestamp like 2025-01-31T08:00:00Z")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedMessage(f"data.{name} must be a timestamp like 2025-01-31T08:00:00Z") from None
    if parsed.tzinfo is None:
        raise MalformedMessage(f"data.{name} needs a time zone (Z)")
    return parsed.astimezone(UTC)


def _amount(data: dict, name: str) -> Decimal:
    value = data.get(name)
    try:
        amount = Decimal(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        raise MalformedMessage(f"data.{name} must be a non-negative decimal string")
    return amount


def _conflict(msg_type: str, order: GuaranteeOrder, state: str | None = None) -> StateConflict:
    return StateConflict(msg_type, order.order_no, state or order.state.value)


def _tell_bidder(order: GuaranteeOrder, kind: str, subject: Any, **params: Any) -> None:
    notices.notify(notices.members([order.bidder_id], [Role.BIDDER]), kind=kind, object_type="guarantee_order",
                   object_id=order.id, subject=subject, order_no=order.order_no, **params)


# -- Result ------------------------------------------------------------------------------------------

def _mark_apply_sent(order: GuaranteeOrder, at: datetime) -> None:
    """A result proves the issuer has the order: an OrderApply still queued need not go again."""
    for message in db.session.scalars(select(OutboundMessage).where(
            OutboundMessage.order_id == order.id, OutboundMessage.type == protocol.ORDER_APPLY,
            OutboundMessage.state.in_([OutboxState.PENDING, OutboxState.FAILED]))):
        message.state = OutboxState.SENT
        message.sent_at = at
    order.next_attempt_at = None
    order.last_error = None


def on_result(actor: Actor, order: GuaranteeOrder, data: dict, at: datetime) -> str:
    status = data.get("status")
    if status == "approved":
        guarantee_no = _text(data, "guarantee_no", 64)
        issued_at, valid_from, valid_until = (_time(data, n) for n in ("issued_at", "valid_from", "valid_until"))
        if valid_until <= valid_from:
            raise MalformedMessage("data.valid_until must be after data.valid_from")
        if reached(order.state, OrderState.APPROVED):
            if order.guarantee_no == guarantee_no:
                return ABSORBED
            raise _conflict(protocol.RESULT, order)
        if order.state not in (OrderState.DRAFT, OrderState.APPLIED):
            raise _conflict(protocol.RESULT, order)
        old = lifecycle.transition(order, OrderState.APPROVED)
        order.guarantee_no, order.issued_at, order.valid_from, order.valid_until = (guarantee_no, issued_at,
                                                                                    valid_from, valid_until)
        order.payer_account = _text(data, "payer_account", 40, required=False)  # who paid the premium
        _mark_apply_sent(order, at)
        audit.record(actor, "guarantee.order.approved", "guarantee_order", order.id,
                     {"order_no": order.order_no, "state": [old.value, OrderState.APPROVED.value],
                      "guarantee_no": guarantee_no, "issued_at": issued_at, "valid_from": valid_from,
                      "valid_until": valid_until})
        _tell_bidder(order, "guarantee_approved", _l("Guarantee order %(order_no)s approved; the letter follows"))
        return APPLIED
    if status == "rejected":
        reason = _text(data, "reason", 2000, required=False) or ""
        if order.state == OrderState.REJECTED:
            return ABSORBED
        if order.state not in (OrderState.DRAFT, OrderState.APPLIED):
            raise _conflict(protocol.RESULT, order)
        old = lifecycle.transition(order, OrderState.REJECTED)
        order.rejection_reason = reason
        _mark_apply_sent(order, at)
        audit.record(actor, "guarantee.order.rejected", "guarantee_order", order.id,
                     {"order_no": order.order_no, "state": [old.value, OrderState.REJECTED.value], "reason": reason})
        _tell_bidder(order, "guarantee_rejected", _l("Guarantee order %(order_no)s rejected: %(reason)s"),
                     reason=reason or "-")
        return APPLIED
    raise MalformedMessage("data.status must be approved or rejected")


# -- Letter ------------------------------------------------------------------------------------------

def _code_from_pdf(pdf: bytes) -> str | None:
    """The verification code from the PDF's document information, if the issuer put it there."""
    try:
        info = PdfFileReader(io.BytesIO(pdf), strict=False).trailer_view.get("/Info")
        info = info.get_object() if info is not None else {}
        for key in ("/VerificationCode", "/ebid:VerificationCode"):
            if key in info:
                return str(info[key]).strip().upper()
    except Exception:  # noqa: BLE001 - an unreadable info dictionary simply has no code
        return None
    return None


def _letter_bytes(data: dict) -> tuple[bytes, str]:
    raw = data.get("pdf_base64")
    if not isinstance(raw, str) or len(raw) > MAX_LETTER_BYTES * 4 // 3 + 4:
        raise MalformedMessage(f"data.pdf_base64 must be base64 of a PDF of at most {MAX_LETTER_BYTES} bytes")
    try:
        pdf = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedMessage("data.pdf_base64 is not valid base64") from None
    declared = (_text(data, "sha256", 64) or "").lower()
    actual = hashlib.sha256(pdf).hexdigest()
    if declared != actual:
        raise MalformedMessage(f"data.sha256 {declared} does not match the PDF (its SHA-256 is {actual})")
    if not pdf.startswith(b"%PDF-"):
        raise MalformedMessage("data.pdf_base64 is not a PDF")
    return pdf, actual


def _store_letter(order: GuaranteeOrder, pdf: bytes, sha: str, filename: str) -> None:
    stored, _ = default_store().put_bytes(pdf)
    order.letter_file_sha256 = stored
    order.letter_sha256 = sha
    order.letter_filename = filename[:255]


def on_letter(actor: Actor, order: GuaranteeOrder, data: dict, at: datetime) -> str:
    guarantee_no = _text(data, "guarantee_no", 64)
    filename = _text(data, "filename", 255)
    pdf, sha = _letter_bytes(data)
    if order.guarantee_no is not None and guarantee_no != order.guarantee_no:
        raise _conflict(protocol.LETTER, order)
    if sha in (order.letter_sha256, order.superseded_sha256):
        return ABSORBED
    supersedes = data.get("supersedes_sha256")
    if supersedes is not None:  # the revealed revision of a sealed letter (密文保函), after the opening
        if not (order.revealed_at is not None and order.letter_sha256 == supersedes
                and order.state in lifecycle.ISSUED_OR_LATER):
            raise _conflict(protocol.LETTER, order)
        _store_letter(order, pdf, sha, filename)
        order.superseded_sha256 = supersedes
        audit.record(actor, "guarantee.letter.revealed", "guarantee_order", order.id,
                     {"order_no": order.order_no, "guarantee_no": guarantee_no, "sha256": sha,
                      "supersedes_sha256": supersedes})
        return APPLIED
    if order.state != OrderState.APPROVED:  # a second, different letter, or one before its Result
        raise _conflict(protocol.LETTER, order)
    code = (data.get("verification_code") or _code_from_pdf(pdf) or "").strip().upper()
    if not protocol.is_verification_code(code):
        raise MalformedMessage(f"data.verification_code must be {protocol.VERIFICATION_CODE_LENGTH} characters of "
                               f"{protocol.VERIFICATION_ALPHABET}")
    _store_letter(order, pdf, sha, filename)
    order.verification_code = code
    old = lifecycle.transition(order, OrderState.ISSUED)
    audit.record(actor, "guarantee.order.issued", "guarantee_order", order.id,
                 {"order_no": order.order_no, "state": [old.value, OrderState.ISSUED.value],
                  "guarantee_no": guarantee_no, "sha256": sha, "size": len(pdf), "filename": filename})
    _tell_bidder(order, "guarantee_issued", _l("Guarantee letter %(guarantee_no)s issued for order %(order_no)s"),
                 guarantee_no=guarantee_no)
    return APPLIED


# -- ReleaseNotify -----------------------------------------------------------------------------------

def on_release_notify(actor: Actor, order: GuaranteeOrder, data: dict, at: datetime) -> str:
    guarantee_no = _text(data, "guarantee_no", 64)
    released_at = _time(data, "released_at")
    if guarantee_no != order.guarantee_no:
        raise _conflict(protocol.RELEASE_NOTIFY, order)
    if order.state == OrderState.CLOSED and order.release_confirmed_at is not None:
        return ABSORBED
    if order.state == OrderState.CLOSED:  # closed at expiry before the issuer confirmed: note the confirmation
        order.release_confirmed_at = released_at
        audit.record(actor, "guarantee.order.release_confirmed", "guarantee_order", order.id,
                     {"order_no": order.order_no, "state": [OrderState.CLOSED.value, OrderState.CLOSED.value],
                      "released_at": released_at, "closed_reason": order.close_reason})
        return APPLIED
    old = order.state
    if order.state in lifecycle.LETTER_IN_FORCE:  # the issuer ended it first (e.g. at expiry)
        lifecycle.transition(order, OrderState.RELEASED)
        order.released_at = released_at
        order.release_reason = "issuer_released"
        order.release_trigger_at = released_at
        notices.notify(notices.members([order.bidder_id], [Role.BIDDER])
                       + notices.members([order.tender.tenderer_id, order.tender.agency_id],
                                         [Role.TENDERER, Role.AGENCY]),
                       kind="guarantee_released_by_issuer", object_type="guarantee_order", object_id=order.id,
                       subject=_l("%(issuer)s released guarantee %(guarantee_no)s"), issuer=order.issuer.name,
                       guarantee_no=guarantee_no)
    elif order.state != OrderState.RELEASED:
        raise _conflict(protocol.RELEASE_NOTIFY, order)
    lifecycle.transition(order, OrderState.CLOSED)
    order.release_confirmed_at = released_at
    order.closed_at = at
    order.close_reason = "release_confirmed"  # closing.CloseReason.RELEASE_CONFIRMED
    audit.record(actor, "guarantee.order.release_confirmed", "guarantee_order", order.id,
                 {"order_no": order.order_no, "state": [old.value, OrderState.CLOSED.value],
                  "released_at": released_at})
    return APPLIED


# -- ClaimResult -------------------------------------------------------------------------------------

def on_claim_result(actor: Actor, order: GuaranteeOrder, data: dict, at: datetime) -> str:
    claim_no = _text(data, "claim_no", 40)
    claim = db.session.scalar(select(GuaranteeClaim).where(GuaranteeClaim.claim_no == claim_no,
                                                           GuaranteeClaim.order_id == order.id))
    if claim is None:
        raise MalformedMessage(f"claim {claim_no} is not a claim on order {order.order_no}")
    status = data.get("status")
    if status not in ("paid", "denied"):
        raise MalformedMessage("data.status must be paid or denied")
    amount_paid = _amount(data, "amount_paid")
    reason = _text(data, "reason", 2000, required=False) or ""
    decided_at = _time(data, "decided_at")
    if status == "paid" and not 0 < amount_paid <= claim.amount:
        raise MalformedMessage(f"data.amount_paid must be above 0 and at most the claimed {claim.amount}")
    if claim.state in (ClaimState.PAID, ClaimState.DENIED):
        if claim.state.value == status and (status == "denied" or claim.amount_paid == amount_paid):
            return ABSORBED
        raise _conflict(protocol.CLAIM_RESULT, order, f"claim {claim.state.value}")
    if order.state != OrderState.CLAIMED:
        raise _conflict(protocol.CLAIM_RESULT, order)
    target = OrderState.PAID if status == "paid" else OrderState.DENIED
    old = lifecycle.transition(order, target)
    claim.state = ClaimState(status)
    claim.amount_paid = amount_paid if status == "paid" else Decimal("0.00")
    claim.decision_reason = reason
    claim.decided_at = decided_at
    claim.sent_at = claim.sent_at or at
    audit.record(actor, f"guarantee.claim.{status}", "guarantee_claim", claim.id,
                 {"claim_no": claim_no, "order_no": order.order_no, "state": [old.value, target.value],
                  "amount_paid": claim.amount_paid, "reason": reason, "decided_at": decided_at})
    notices.notify(notices.members([order.tender.tenderer_id, order.tender.agency_id], [Role.TENDERER, Role.AGENCY])
                   + notices.members([order.bidder_id], [Role.BIDDER]),
                   kind=f"guarantee_claim_{status}", object_type="guarantee_claim", object_id=claim.id,
                   subject=_l("Claim %(claim_no)s on guarantee %(guarantee_no)s: %(status)s"), claim_no=claim_no,
                   guarantee_no=order.guarantee_no, status=status)
    return APPLIED


HANDLERS: dict[str, Callable[[Actor, GuaranteeOrder, dict, datetime], str]] = {
    protocol.RESULT: on_result,
    protocol.LETTER: on_letter,
    protocol.RELEASE_NOTIFY: on_release_notify,
    protocol.CLAIM_RESULT: on_claim_result,
}
