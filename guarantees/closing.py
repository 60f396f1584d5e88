"""Closing guarantee orders (保函结案) when nothing more can happen to them, DOMAIN.md §4 ``→ closed``.

An order is closed:

* ``release_confirmed``: the issuer confirmed the release (``ReleaseNotify``; done by the callback);
* ``claim_paid``: the issuer paid the claim: the guarantee has done its work;
* ``expired``: the letter's validity ended (plus a day's grace for callbacks and releases in flight)
  while it was in force, released but never confirmed, or after a denied claim. Expiry ends the
  issuer's liability (a claim must be filed before it), so there is nothing left to release.

An order whose claim waits for the issuer's answer (``claimed``) is never closed here: the watch
flags the overdue answer instead. :func:`close_reason` is the pure rule; :func:`close_due` applies it
to every order (run by the hourly ``guarantees.watch_deadlines``); both are idempotent.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from core import audit
from core.actor import Actor
from core.clock import as_utc, now
from core.db import db
from guarantees import lifecycle
from guarantees.lifecycle import OrderState
from guarantees.models import GuaranteeOrder

GRACE_AFTER_EXPIRY = timedelta(days=1)
SYSTEM = Actor.system(source="scheduler")

S = OrderState
CLOSES_AT_EXPIRY = frozenset({S.ISSUED, S.BOUND_TO_BID, S.VERIFIED_AT_OPENING, S.RELEASED, S.DENIED})


class CloseReason(enum.StrEnum):
    RELEASE_CONFIRMED = "release_confirmed"
    CLAIM_PAID = "claim_paid"
    EXPIRED = "expired"


def close_reason(state: OrderState | str, valid_until: datetime | None, at: datetime) -> CloseReason | None:
    """Why an order in ``state``, valid until ``valid_until``, is due to close at ``at`` (None: not due)."""
    state = S(state)
    if state == S.PAID:
        return CloseReason.CLAIM_PAID
    if state in CLOSES_AT_EXPIRY and valid_until is not None and as_utc(valid_until) + GRACE_AFTER_EXPIRY <= at:
        return CloseReason.EXPIRED
    return None


def close(actor: Actor, order: GuaranteeOrder, reason: CloseReason, at: datetime) -> None:
    """Move ``order`` to closed for ``reason`` and audit it."""
    old = lifecycle.transition(order, S.CLOSED)
    order.closed_at = at
    order.close_reason = reason.value
    audit.record(actor, "guarantee.order.close", "guarantee_order", order.id,
                 {"order_no": order.order_no, "guarantee_no": order.guarantee_no,
                  "state": [old.value, S.CLOSED.value], "reason": reason.value, "valid_until": order.valid_until})


def close_due(at: datetime | None = None) -> int:
    """Close every order due to close at ``at``; return how many were closed now."""
    at = at or now()
    stmt = select(GuaranteeOrder).where(or_(
        GuaranteeOrder.state == S.PAID,
        GuaranteeOrder.state.in_(list(CLOSES_AT_EXPIRY)) & (GuaranteeOrder.valid_until <= at - GRACE_AFTER_EXPIRY)))
    closed = 0
    for order in db.session.scalars(stmt.order_by(GuaranteeOrder.id)).all():
        reason = close_reason(order.state, order.valid_until, at)
        if reason is None:  # the database compared naive times (SQLite); the rule has the last word
            continue
        close(SYSTEM, order, reason, at)
        closed += 1
    db.session.flush()
    return closed
