"""Release (退保 / 释放) of guarantee letters, and binding a letter to a bid.

When a letter must be released (条例 §§35, 57: within 5 days): the bidder withdraws before the
deadline; the contract is signed; the tender is cancelled (终止) or fails (流标). The platform sends
``Release`` to the issuer through the outbox; ``guarantees.watch_deadlines`` flags a release still
unsent 5 days after its trigger.

Tender events reach this module through the blinker signals ``bidding.tender_cancelled``,
``bidding.tender_failed`` and ``bidding.bid_withdrawn`` (sent by bidding after the change, in the same
transaction: a withdrawn bid frees the letter bound to its lot), and through the
periodic sweep ``guarantees.release_sweep`` that catches any cancelled or failed tender whose
guarantees are still live (idempotent: released orders are left alone).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from bidding import bid_withdrawn, tender_cancelled, tender_failed
from bidding.models import Tender, TenderStatus
from core import audit
from core.actor import Actor
from core.clock import as_utc, now
from core.db import db
from core.errors import ValidationFailed
from core.identity.access import is_admin
from core.identity.models import Role
from guarantees import lifecycle, notices, outbox, protocol
from guarantees.errors import LetterRefused, NotBeneficiary, NotYourOrder
from guarantees.lifecycle import OrderState
from guarantees.models import GuaranteeOrder
from guarantees.orders import require_open, require_owner
from guarantees.verification import Expectation, verify_stored_letter

SYSTEM = Actor.system(source="guarantees")


class ReleaseReason(enum.StrEnum):
    WITHDRAWN_BEFORE_DEADLINE = "withdrawn_before_deadline"  # 条例 §35
    CONTRACT_SIGNED = "contract_signed"                      # 条例 §57
    NOT_AWARDED = "not_awarded"
    TENDER_CANCELLED = "tender_cancelled"
    TENDER_FAILED = "tender_failed"
    CLAIM_DENIED = "claim_denied"
    OTHER = "other"


BENEFICIARY_REASONS = frozenset({ReleaseReason.CONTRACT_SIGNED, ReleaseReason.NOT_AWARDED,
                                 ReleaseReason.TENDER_CANCELLED, ReleaseReason.TENDER_FAILED,
                                 ReleaseReason.CLAIM_DENIED, ReleaseReason.OTHER})


def _is_beneficiary_staff(actor: Actor, order: GuaranteeOrder) -> bool:
    return actor.role in (Role.TENDERER, Role.AGENCY) and order.tender.is_managed_by(actor.organisation_id)


def _check_release_rights(actor: Actor, order: GuaranteeOrder, reason: ReleaseReason) -> None:
    if is_admin(actor):
        return
    if reason == ReleaseReason.WITHDRAWN_BEFORE_DEADLINE:
        require_owner(actor, order)
        require_open(order.tender)
        return
    if actor.role == Role.BIDDER:
        raise NotYourOrder(_l("A bidder may only release its own letter by withdrawing before the deadline."))
    if not _is_beneficiary_staff(actor, order):
        raise NotBeneficiary()


def release(actor: Actor, order: GuaranteeOrder, reason: ReleaseReason | str, *,
            trigger_at: datetime | None = None, note: str = "") -> GuaranteeOrder:
    """Release a letter in force and queue ``Release`` to its issuer (idempotent for a released order)."""
    try:
        reason = ReleaseReason(reason)
    except ValueError:
        raise ValidationFailed(fields={"reason": [_l("Use one of: %(reasons)s.",
                                                     reasons=", ".join(r.value for r in ReleaseReason))]}) from None
    _check_release_rights(actor, order, reason)
    if order.state in (OrderState.RELEASED, OrderState.CLOSED) and order.released_at is not None:
        return order
    old = lifecycle.transition(order, OrderState.RELEASED)
    at = now()
    order.released_at = at
    order.release_reason = reason.value
    order.release_trigger_at = as_utc(trigger_at) if trigger_at else at
    db.session.flush()
    outbox.queue(order, protocol.RELEASE, {"guarantee_no": order.guarantee_no, "reason": reason.value})
    audit.record(actor, "guarantee.order.release", "guarantee_order", order.id,
                 {"order_no": order.order_no, "guarantee_no": order.guarantee_no,
                  "state": [old.value, OrderState.RELEASED.value], "reason": reason.value,
                  "trigger_at": order.release_trigger_at, "note": (note or "").strip()[:500]})
    notices.notify(notices.members([order.bidder_id], [Role.BIDDER]), kind="guarantee_released",
                   object_type="guarantee_order", object_id=order.id,
                   subject=_l("Guarantee %(guarantee_no)s released (%(reason)s)"),
                   guarantee_no=order.guarantee_no or order.order_no, reason=reason.value)
    return order


def _cancel_unissued(actor: Actor, order: GuaranteeOrder, reason: str) -> None:
    old = lifecycle.transition(order, OrderState.CANCELLED)
    order.cancelled_at = now()
    if outbox.withdraw(order, protocol.ORDER_APPLY) or old != OrderState.DRAFT:
        outbox.queue(order, protocol.ORDER_CANCEL, {"reason": reason})
    audit.record(actor, "guarantee.order.cancel", "guarantee_order", order.id,
                 {"order_no": order.order_no, "state": [old.value, OrderState.CANCELLED.value], "reason": reason})


def release_for_tender(actor: Actor, tender: Tender, reason: ReleaseReason | str,
                       trigger_at: datetime | None = None) -> int:
    """Release every letter in force for ``tender`` and cancel its unissued orders; return how many changed."""
    reason = ReleaseReason(reason)
    changed = 0
    stmt = select(GuaranteeOrder).where(GuaranteeOrder.tender_id == tender.id,
                                        GuaranteeOrder.state.in_(list(lifecycle.BEFORE_ISSUE
                                                                      | lifecycle.LETTER_IN_FORCE)))
    for order in db.session.scalars(stmt.order_by(GuaranteeOrder.id)).all():
        if order.state in lifecycle.BEFORE_ISSUE:
            _cancel_unissued(actor, order, reason.value)
        else:
            release(actor, order, reason, trigger_at=trigger_at)
        changed += 1
    db.session.flush()
    return changed


def release_for_bidder(actor: Actor, tender: Tender, lot_id: int, bidder_id: int, reason: ReleaseReason | str,
                       trigger_at: datetime | None = None) -> int:
    """Release one bidder's letters in force for one lot (e.g. not awarded, 条例 §57); return how many."""
    reason = ReleaseReason(reason)
    stmt = select(GuaranteeOrder).where(GuaranteeOrder.tender_id == tender.id, GuaranteeOrder.lot_id == lot_id,
                                        GuaranteeOrder.bidder_id == bidder_id,
                                        GuaranteeOrder.state.in_(list(lifecycle.LETTER_IN_FORCE)))
    orders = db.session.scalars(stmt.order_by(GuaranteeOrder.id)).all()
    for order in orders:
        release(actor, order, reason, trigger_at=trigger_at)
    db.session.flush()
    return len(orders)


@tender_cancelled.connect
def _on_tender_cancelled(tender: Tender, **extra) -> None:
    release_for_tender(SYSTEM, tender, ReleaseReason.TENDER_CANCELLED, tender.cancelled_at)


@tender_failed.connect
def _on_tender_failed(tender: Tender, **extra) -> None:
    release_for_tender(SYSTEM, tender, ReleaseReason.TENDER_FAILED, extra.get("at"))


@bid_withdrawn.connect
def _on_bid_withdrawn(bid: Any, **extra) -> None:
    """A bid withdrawn before the deadline frees the letter bound to it (条例 §35)."""
    order = db.session.scalar(select(GuaranteeOrder).where(GuaranteeOrder.lot_id == bid.lot_id,
                                                           GuaranteeOrder.bidder_id == bid.organisation_id,
                                                           GuaranteeOrder.state == OrderState.BOUND_TO_BID))
    if order is not None:
        release(SYSTEM, order, ReleaseReason.WITHDRAWN_BEFORE_DEADLINE, trigger_at=extra.get("at"))


def release_sweep() -> int:
    """Release the live guarantees of every cancelled or failed tender (the signals' safety net)."""
    live = list(lifecycle.BEFORE_ISSUE | lifecycle.LETTER_IN_FORCE)
    tenders = db.session.scalars(select(Tender).where(
        Tender.status.in_([TenderStatus.CANCELLED, TenderStatus.FAILED]),
        Tender.id.in_(select(GuaranteeOrder.tender_id).where(GuaranteeOrder.state.in_(live))))).all()
    changed = 0
    for tender in tenders:
        cancelled = tender.status == TenderStatus.CANCELLED
        changed += release_for_tender(SYSTEM, tender,
                                      ReleaseReason.TENDER_CANCELLED if cancelled else ReleaseReason.TENDER_FAILED,
                                      tender.cancelled_at if cancelled else tender.updated_at)
    return changed


# -- binding ---------------------------------------------------------------------------------------

def bind_to_bid(actor: Actor, order: GuaranteeOrder) -> GuaranteeOrder:
    """Bind an issued letter to the bidder's bid for its lot (关联投标), after verifying it.

    Bids do not exist in the code base yet: the binding is to (tender, lot, bidder organisation),
    the key a bid will have; the opening check looks the letter up by that key.
    """
    require_owner(actor, order)
    require_open(order.tender)
    lifecycle.check_transition(order.state, OrderState.BOUND_TO_BID)  # only an issued letter
    report = verify_stored_letter(order, expected=Expectation(order.tender, order.lot, order.bidder))
    if not report.ok:
        raise LetterRefused(reasons="; ".join(c.text for c in report.failures))
    lifecycle.transition(order, OrderState.BOUND_TO_BID)
    order.bound_at = now()
    db.session.flush()
    audit.record(actor, "guarantee.order.bind", "guarantee_order", order.id,
                 {"order_no": order.order_no, "guarantee_no": order.guarantee_no, "lot_id": order.lot_id,
                  "state": [OrderState.ISSUED.value, OrderState.BOUND_TO_BID.value],
                  "checks": [c.name for c in report.checks if c.passed]})
    return order
