"""The outbox (发件箱) of messages to issuers: queued in the transaction, delivered after the commit.

A web request never calls an issuer. A service queues an :class:`OutboundMessage` (the ``data`` only)
and the task ``guarantees.send_outbox`` delivers it after the commit; a periodic sweep every 30 s picks
up whatever is due. Each attempt signs afresh (new nonce and timestamp), POSTs with a 5 s timeout and:

* 2xx: sent; the order or claim moves on (``OrderApply`` accepted → ``applied``, ``Claim`` → ``sent``);
* connection error, timeout, 5xx, 429: retried after ``30 s × 2^(attempt-1)`` (at most 1 h), up to
  :data:`MAX_ATTEMPTS`; the bidder sees "waiting for issuer (attempt n, next try at …)";
* any other answer (the issuer refuses the message), or the last attempt failing: ``failed``, audited,
  and the order's bidder and the platform administrators are notified.

Messages of one order go out in order: a message waits while an earlier one of the same order is pending.
An attempt first takes a lease (``next_attempt_at`` moved past the timeout, committed) so that two
workers never send the same message at once; a worker dying mid-send leaves it to the next sweep.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm.exc import StaleDataError

from core import audit
from core.actor import Actor
from core.clock import now
from core.db import db
from core.identity.models import Role
from core.tasks import enqueue
from guarantees import keys, notices, protocol
from guarantees.lifecycle import OrderState
from guarantees.models import ClaimState, GuaranteeClaim, GuaranteeOrder, OutboundMessage, OutboxState

log = logging.getLogger(__name__)

SEND_TASK = "guarantees.send_outbox"
TIMEOUT_SECONDS = 5
BASE_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=1)
MAX_ATTEMPTS = 10
LEASE = timedelta(seconds=60)
SYSTEM = Actor.system(source="outbox")


def backoff(attempts: int) -> timedelta:
    """Delay before the next try after ``attempts`` failed ones: 30 s, 60 s, 120 s … capped at 1 h."""
    if attempts < 1:
        return timedelta(0)
    return min(BASE_DELAY * (2 ** (attempts - 1)), MAX_DELAY)


def queue(order: GuaranteeOrder, type: str, data: dict, *, claim: GuaranteeClaim | None = None,  # noqa: A002
          at: datetime | None = None) -> OutboundMessage:
    """Queue a message to the order's issuer; it is sent after the current transaction commits."""
    if type not in protocol.ISSUER_PATHS:
        raise ValueError(f"{type} is not a platform-to-issuer message")
    message = OutboundMessage(order_id=order.id, claim_id=claim.id if claim else None, type=type,
                              payload=json.loads(json.dumps(protocol.normalise_data(data))),
                              state=OutboxState.PENDING, attempts=0, next_attempt_at=at or now(), created_at=now())
    db.session.add(message)
    db.session.flush()
    enqueue(SEND_TASK, message.id)
    return message


def pending_for(order: GuaranteeOrder) -> list[OutboundMessage]:
    return list(db.session.scalars(select(OutboundMessage).where(OutboundMessage.order_id == order.id,
                                                                 OutboundMessage.state == OutboxState.PENDING)
                                   .order_by(OutboundMessage.id)))


def withdraw(order: GuaranteeOrder, type: str) -> bool:  # noqa: A002
    """Withdraw unsent messages of ``type``; return True if the issuer may already have one of them.

    A message counts as possibly received once an attempt was made (a timeout can hide a delivery).
    """
    maybe_received = False
    for message in db.session.scalars(select(OutboundMessage).where(OutboundMessage.order_id == order.id,
                                                                    OutboundMessage.type == type)):
        if message.state == OutboxState.SENT or message.attempts > 0:
            maybe_received = True
        if message.state in (OutboxState.PENDING, OutboxState.FAILED):
            message.state = OutboxState.CANCELLED
    db.session.flush()
    return maybe_received


def due_ids(limit: int = 100) -> list[int]:
    """Pending messages due now whose order has no earlier pending message, oldest first."""
    at = now()
    rows = db.session.execute(select(OutboundMessage.id, OutboundMessage.order_id, OutboundMessage.next_attempt_at)
                              .where(OutboundMessage.state == OutboxState.PENDING)
                              .order_by(OutboundMessage.id)).all()
    first_per_order: dict[int, tuple[int, datetime]] = {}
    for message_id, order_id, next_at in rows:
        first_per_order.setdefault(order_id, (message_id, next_at))
    return [mid for mid, next_at in first_per_order.values() if next_at <= at][:limit]


@dataclass(frozen=True)
class Attempt:
    ok: bool
    retry: bool
    status: int | None
    error: str
    code: str = ""


def post(url: str, body: bytes) -> Attempt:
    """POST ``body`` as JSON; classify the outcome (never raises for network trouble)."""
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8",
                                              "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return Attempt(True, False, response.status, "")
    except urllib.error.HTTPError as exc:
        code, detail = _error_body(exc)
        retry = exc.code >= 500 or exc.code == 429
        return Attempt(False, retry, exc.code, f"HTTP {exc.code}: {code} {detail}".strip()[:500], code)
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Attempt(False, True, None, f"{type(exc).__name__}: {reason}"[:500])


def _error_body(exc: urllib.error.HTTPError) -> tuple[str, str]:
    """The ``{code, message}`` of an error answer, as far as it can be read."""
    try:
        payload = json.loads(exc.read(4096) or b"{}")
        return str(payload.get("code") or ""), str(payload.get("message") or "")
    except (ValueError, OSError, AttributeError):
        return "", exc.reason if isinstance(exc.reason, str) else ""


def _lease(message_id: int) -> bool:
    at = now()
    result = db.session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.id == message_id, OutboundMessage.state == OutboxState.PENDING,
               OutboundMessage.next_attempt_at <= at)
        .values(next_attempt_at=at + LEASE, attempts=OutboundMessage.attempts + 1)
        .execution_options(synchronize_session=False))
    db.session.commit()
    return result.rowcount == 1


def deliver(message_id: int) -> str:
    """Try to deliver one message now (if due, and first in its order's line); return what happened."""
    blocking = db.session.get(OutboundMessage, message_id)
    if blocking is None:
        return "missing"
    earlier = db.session.scalar(select(OutboundMessage.id).where(
        OutboundMessage.order_id == blocking.order_id, OutboundMessage.state == OutboxState.PENDING,
        OutboundMessage.id < message_id).limit(1))
    if earlier is not None:
        return "waiting"
    if not _lease(message_id):
        return "skipped"
    message = db.session.get(OutboundMessage, message_id, populate_existing=True)
    order = message.order
    issuer = order.issuer
    signed = protocol.sign_message(keys.platform_key(), message.type, keys.platform_id(), order.order_no,
                                   message.payload, now=now())
    attempt = post(issuer.api_base_url + protocol.ISSUER_PATHS[message.type], protocol.encode(signed))
    outcome = _record(message_id, attempt)
    if outcome == "sent":
        following = pending_for(db.session.get(GuaranteeOrder, message.order_id))
        if following:
            enqueue(SEND_TASK, following[0].id)
            db.session.commit()
    return outcome


def _record(message_id: int, attempt: Attempt) -> str:
    for _ in range(3):  # the order may be changed concurrently by a callback (optimistic lock)
        try:
            outcome = _apply(message_id, attempt)
            db.session.commit()
            return outcome
        except StaleDataError:
            db.session.rollback()
    raise RuntimeError(f"outbox message {message_id}: could not record the attempt")


def _apply(message_id: int, attempt: Attempt) -> str:
    message = db.session.get(OutboundMessage, message_id, populate_existing=True)
    order = db.session.get(GuaranteeOrder, message.order_id, populate_existing=True)
    at = now()
    order.attempts = message.attempts
    if message.state != OutboxState.PENDING:  # withdrawn while in flight (an order cancelled meanwhile)
        message.last_error = None if attempt.ok else attempt.error
        return "withdrawn"
    if not attempt.ok and message.type == protocol.ORDER_CANCEL and attempt.code == "unknown_order":
        attempt = Attempt(True, False, attempt.status, "")  # the issuer never had the order: nothing to cancel
    if attempt.ok:
        message.state = OutboxState.SENT
        message.sent_at = at
        message.last_error = None
        order.last_error = None
        order.next_attempt_at = None
        _delivered(order, message, at)
        audit.record(SYSTEM, "guarantee.message.sent", "guarantee_order", order.id,
                     {"order_no": order.order_no, "type": message.type, "attempts": message.attempts,
                      "http_status": attempt.status})
        return "sent"
    message.last_error = attempt.error
    order.last_error = attempt.error
    if attempt.retry and message.attempts < MAX_ATTEMPTS:
        message.next_attempt_at = at + backoff(message.attempts)
        order.next_attempt_at = message.next_attempt_at
        log.info("outbox %s (%s %s) attempt %s failed, next at %s: %s", message.id, message.type, order.order_no,
                 message.attempts, message.next_attempt_at, attempt.error)
        return "retry"
    message.state = OutboxState.FAILED
    order.next_attempt_at = None
    audit.record(SYSTEM, "guarantee.message.failed", "guarantee_order", order.id,
                 {"order_no": order.order_no, "type": message.type, "attempts": message.attempts,
                  "error": attempt.error})
    persons = notices.members([order.bidder_id], [Role.BIDDER]) + notices.admins()
    notices.notify(persons, kind="guarantee_message_failed", object_type="guarantee_order", object_id=order.id,
                   subject=_l("Guarantee order %(order_no)s: %(issuer)s could not be reached"),
                   body=_l("The message %(type)s was not delivered after %(attempts)s attempts (last error: "
                           "%(error)s). An administrator can send it again with `ebid guarantees outbox --retry`."),
                   order_no=order.order_no, issuer=order.issuer.name, type=message.type,
                   attempts=message.attempts, error=attempt.error)
    return "failed"


def _delivered(order: GuaranteeOrder, message: OutboundMessage, at: datetime) -> None:
    if message.type == protocol.ORDER_APPLY and order.state == OrderState.DRAFT:
        order.state = OrderState.APPLIED
        audit.record(SYSTEM, "guarantee.order.applied", "guarantee_order", order.id,
                     {"order_no": order.order_no, "state": [OrderState.DRAFT.value, OrderState.APPLIED.value]})
    if message.type == protocol.CLAIM and message.claim_id is not None:
        claim = db.session.get(GuaranteeClaim, message.claim_id)
        if claim.state == ClaimState.FILED:
            claim.state = ClaimState.SENT
            claim.sent_at = at


def retry_failed(actor: Actor, order: GuaranteeOrder | None = None) -> int:
    """Queue failed messages again (all, or one order's) with a fresh attempt budget; return how many."""
    stmt = select(OutboundMessage).where(OutboundMessage.state == OutboxState.FAILED)
    if order is not None:
        stmt = stmt.where(OutboundMessage.order_id == order.id)
    count = 0
    for message in db.session.scalars(stmt.order_by(OutboundMessage.id)):
        message.state = OutboxState.PENDING
        message.attempts = 0
        message.next_attempt_at = now()
        count += 1
        audit.record(actor, "guarantee.message.requeued", "guarantee_order", message.order_id,
                     {"type": message.type, "message_id": message.id})
        enqueue(SEND_TASK, message.id)
    db.session.flush()
    return count
