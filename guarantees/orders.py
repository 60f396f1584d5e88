"""Bidder-side verbs: choose among offers, apply for a guarantee (申请保函), cancel, use a waiver, bind.

The bidder chooses freely: :func:`offers` lists every admitted issuer's offerable product side by side
in a random order (``secrets.SystemRandom``), never a preferred issuer first. :func:`apply_for_guarantee`
freezes the rate version and the premium on the order and queues ``OrderApply`` in the outbox; the
request itself never calls the issuer. Release (退保) lives in :mod:`guarantees.release`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from bidding.models import Lot, Tender, TenderStatus
from core import audit
from core.actor import Actor
from core.clock import as_utc, now
from core.db import db
from core.errors import ValidationFailed
from core.identity.models import Organisation, Role
from guarantees import lifecycle, outbox, protocol, rates
from guarantees.errors import (
    AlreadyHasOrder,
    BondNotRequired,
    DeadlinePassed,
    NotABidder,
    NotYourOrder,
    OrderNotFound,
    ProductNotOfferable,
    WaiverRefused,
)
from guarantees.lifecycle import OrderState
from guarantees.models import (
    BondWaiver,
    GuaranteeOrder,
    GuaranteeProduct,
    GuaranteeType,
    Issuer,
    OutboundMessage,
    OutboxState,
    WaiverKind,
)
from guarantees.requirements import Form, Requirement, bond_requirement
from guarantees.services import policy_in_force, product_availability, rate_in_force

_random = secrets.SystemRandom()


# -- who and when ----------------------------------------------------------------------------------

def require_bidder(actor: Actor, tender: Tender) -> Organisation:
    """A bidder acts for its own organisation, which may not be the tender's tenderer or agency."""
    if actor.role != Role.BIDDER or actor.organisation_id is None or tender.is_managed_by(actor.organisation_id):
        raise NotABidder()
    return db.session.get(Organisation, actor.organisation_id)


def require_owner(actor: Actor, order: GuaranteeOrder) -> None:
    if actor.is_system:
        return
    if actor.role != Role.BIDDER or actor.organisation_id != order.bidder_id:
        raise NotYourOrder()


def shown(value: datetime | None) -> str:
    return "-" if value is None else as_utc(value).strftime("%Y-%m-%d %H:%M UTC")


def require_open(tender: Tender) -> None:
    """Before the bid deadline, by status and by the clock (a late scheduler must not admit late acts)."""
    deadline = tender.bid_deadline_at
    if tender.status != TenderStatus.PUBLISHED or deadline is None or now() >= as_utc(deadline):
        raise DeadlinePassed(deadline=shown(deadline))


def _lot(tender: Tender, lot: Lot) -> Lot:
    if lot.tender_id != tender.id:
        raise ValidationFailed(fields={"lot_id": [_l("This lot does not belong to the tender.")]})
    return lot


# -- offers ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Offer:
    """One product on offer for a lot, with the premium this bidder would pay."""

    product: GuaranteeProduct
    issuer: Issuer
    rate_id: int
    rate_permille: Decimal
    premium: Decimal
    amount: Decimal
    minimum_fee: Decimal
    maximum_fee: Decimal | None
    extra_validity_days: int


@dataclass(frozen=True)
class Unavailable:
    product: GuaranteeProduct
    code: str
    reason: Any


def _candidates() -> list[GuaranteeProduct]:
    return list(db.session.scalars(select(GuaranteeProduct).join(Issuer).order_by(GuaranteeProduct.id)))


def offers(tender: Tender, lot: Lot, bidder: Organisation | None, *, at: datetime | None = None,
           rng: Any = None) -> list[Offer]:
    """Every admitted issuer's active, offerable product for ``lot``, in a random order (no favourite)."""
    _lot(tender, lot)
    requirement = bond_requirement(tender, lot, bidder)
    if not requirement.accepts_guarantee or requirement.amount is None:
        return []
    at = at or now()
    out = []
    for product in _candidates():
        if not product_availability(product, at, requirement.allowed_issuer_kinds):
            continue
        rate = rate_in_force(product, at)
        out.append(Offer(product=product, issuer=product.issuer, rate_id=rate.id, rate_permille=rate.rate_permille,
                         premium=rates.premium(requirement.amount, rate.rate_permille, product.minimum_fee,
                                               product.maximum_fee),
                         amount=requirement.amount, minimum_fee=product.minimum_fee, maximum_fee=product.maximum_fee,
                         extra_validity_days=product.extra_validity_days))
    (rng or _random).shuffle(out)
    return out


def unavailable_products(tender: Tender, lot: Lot, *, at: datetime | None = None) -> list[Unavailable]:
    """Products of admitted issuers left out of the choices, each with the reason."""
    requirement = bond_requirement(tender, _lot(tender, lot), None)
    at = at or now()
    out = []
    for product in _candidates():
        if not product.issuer.is_admitted:
            continue
        verdict = product_availability(product, at, requirement.allowed_issuer_kinds)
        if not verdict:
            out.append(Unavailable(product, verdict.code, verdict.reason))
    return out


# -- applying and cancelling -----------------------------------------------------------------------

def live_order(lot: Lot, bidder_id: int) -> GuaranteeOrder | None:
    return db.session.scalar(select(GuaranteeOrder).where(GuaranteeOrder.lot_id == lot.id,
                                                          GuaranteeOrder.bidder_id == bidder_id,
                                                          GuaranteeOrder.state.in_(list(lifecycle.LIVE)))
                             .order_by(GuaranteeOrder.id.desc()).limit(1))


def _party(org: Organisation) -> dict[str, str]:
    return {"name": org.name, "uscc": org.uscc}


def apply_for_guarantee(actor: Actor, tender: Tender, lot: Lot, product: GuaranteeProduct,
                        guarantee_type: GuaranteeType | str) -> GuaranteeOrder:
    """Apply for a bid guarantee: freeze rate and premium, create the order, queue ``OrderApply``."""
    bidder = require_bidder(actor, tender)
    _lot(tender, lot)
    require_open(tender)
    try:
        guarantee_type = GuaranteeType(guarantee_type)
    except ValueError:
        raise ValidationFailed(fields={"guarantee_type": [_l("Choose plain (明文) or sealed (密文).")]}) from None
    requirement = bond_requirement(tender, lot, bidder)
    if requirement.amount is None:
        raise BondNotRequired(reason=_l("no bid bond is set for lot %(lot)s.", lot=lot.code))
    if not requirement.accepts_guarantee:
        raise BondNotRequired(reason=_l("the accepted forms are: %(forms)s.",
                                        forms=", ".join(f.value for f in requirement.accepted_forms)))
    at = now()
    verdict = product_availability(product, at, requirement.allowed_issuer_kinds)
    if not verdict:
        raise ProductNotOfferable(reason=verdict.reason)
    existing = live_order(lot, bidder.id)
    if existing is not None:
        raise AlreadyHasOrder(order_no=existing.order_no, state=existing.state.value)
    rate = rate_in_force(product, at)
    policy = policy_in_force(at)
    fee = rates.premium(requirement.amount, rate.rate_permille, product.minimum_fee, product.maximum_fee)
    extra = max(requirement.extra_validity_days, product.extra_validity_days)
    order = GuaranteeOrder(
        order_no=f"G{at:%Y%m%d}{secrets.token_hex(5).upper()}", tender_id=tender.id, lot_id=lot.id,
        bidder_id=bidder.id, issuer_id=product.issuer_id, product_id=product.id, rate_id=rate.id,
        rate_permille=rate.rate_permille, policy_id=policy.id if policy else None,
        reference_permille=policy.reference_permille if policy else None, amount=requirement.amount, premium=fee,
        guarantee_type=guarantee_type, required_valid_until=requirement.valid_until, state=OrderState.DRAFT,
        created_by_id=actor.person_id, created_at=at, updated_at=at)
    db.session.add(order)
    db.session.flush()
    outbox.queue(order, protocol.ORDER_APPLY, {
        "order_no": order.order_no, "tender_code": tender.code, "tender_title": tender.title,
        "lot_code": lot.code, "lot_title": lot.title, "bid_deadline": as_utc(tender.bid_deadline_at),
        "validity_days": tender.bid_validity_days, "extra_validity_days": extra,
        "valid_until_required": requirement.valid_until, "amount": requirement.amount,
        "guarantee_type": guarantee_type.value, "beneficiary": _party(tender.tenderer), "principal": _party(bidder),
        "product_code": product.code, "premium": fee, "rate_permille": rate.rate_permille})
    audit.record(actor, "guarantee.order.create", "guarantee_order", order.id,
                 {"order_no": order.order_no, "tender_id": tender.id, "lot_id": lot.id, "issuer": product.issuer.code,
                  "product": product.code, "rate_id": rate.id, "rate_permille": rate.rate_permille,
                  "amount": requirement.amount, "premium": fee, "guarantee_type": guarantee_type.value,
                  "policy_id": order.policy_id, "state": OrderState.DRAFT.value})
    return order


def cancel_order(actor: Actor, order: GuaranteeOrder, reason: str = "") -> GuaranteeOrder:
    """Cancel an order before its letter is issued; tell the issuer only if it already has the order."""
    require_owner(actor, order)
    reason = (reason or "").strip()[:500]
    old = order.state
    lifecycle.transition(order, OrderState.CANCELLED)
    order.cancelled_at = now()
    maybe_received = outbox.withdraw(order, protocol.ORDER_APPLY) or old != OrderState.DRAFT
    if maybe_received:  # the issuer has (or may have) the application: cancel it there too
        outbox.queue(order, protocol.ORDER_CANCEL, {"reason": reason or "cancelled by the bidder"})
    db.session.flush()
    audit.record(actor, "guarantee.order.cancel", "guarantee_order", order.id,
                 {"order_no": order.order_no, "state": [old.value, OrderState.CANCELLED.value], "reason": reason,
                  "issuer_notified": maybe_received})
    return order


# -- waivers ---------------------------------------------------------------------------------------

def use_waiver(actor: Actor, tender: Tender, lot: Lot, kind: WaiverKind | str, statement: str) -> BondWaiver:
    """Use the lot's bond waiver or credit commitment (信用承诺) instead of a bond, with a signed statement."""
    bidder = require_bidder(actor, tender)
    _lot(tender, lot)
    require_open(tender)
    try:
        kind = WaiverKind(kind)
    except ValueError:
        raise ValidationFailed(fields={"kind": [_l("Use one of: %(kinds)s.",
                                                   kinds=", ".join(k.value for k in WaiverKind))]}) from None
    statement = (statement or "").strip()
    if not 10 <= len(statement) <= 5000:
        raise ValidationFailed(fields={"statement": [_l("Write the commitment statement (10 to 5000 characters).")]})
    requirement = bond_requirement(tender, lot, bidder)
    if requirement.waiver_kind != kind:
        reason = requirement.waiver_refusal or _l("the tender offers %(offered)s for this lot, not %(kind)s.",
                                                  offered=requirement.waiver_kind or "-", kind=kind.value)
        raise WaiverRefused(reason=reason)
    if db.session.scalar(select(BondWaiver).where(BondWaiver.lot_id == lot.id, BondWaiver.bidder_id == bidder.id)):
        raise WaiverRefused(reason=_l("your organisation already used it for this lot."))
    waiver = BondWaiver(tender_id=tender.id, lot_id=lot.id, bidder_id=bidder.id, kind=kind, statement=statement,
                        bond_amount=requirement.amount, created_by_id=actor.person_id, created_at=now())
    db.session.add(waiver)
    db.session.flush()
    audit.record(actor, "guarantee.waiver.use", "guarantee_waiver", waiver.id,
                 {"tender_id": tender.id, "lot_id": lot.id, "kind": kind.value, "bond_amount": requirement.amount,
                  "statement": statement})
    return waiver


# -- read models -----------------------------------------------------------------------------------

def order_by_no(order_no: str) -> GuaranteeOrder:
    order = db.session.scalar(select(GuaranteeOrder).where(GuaranteeOrder.order_no == (order_no or "").strip()))
    if order is None:
        raise OrderNotFound(order_no=order_no)
    return order


def orders_of(bidder_id: int) -> list[GuaranteeOrder]:
    return list(db.session.scalars(select(GuaranteeOrder).where(GuaranteeOrder.bidder_id == bidder_id)
                                   .order_by(GuaranteeOrder.id.desc())))


def orders_for_tender(tender: Tender) -> list[GuaranteeOrder]:
    return list(db.session.scalars(select(GuaranteeOrder).where(GuaranteeOrder.tender_id == tender.id)
                                   .order_by(GuaranteeOrder.lot_id, GuaranteeOrder.id)))


@dataclass(frozen=True)
class Progress:
    """What the bidder sees: the state and, while a message waits for the issuer, the attempts."""

    state: str
    waiting: bool
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    text: str


def order_progress(order: GuaranteeOrder) -> Progress:
    """The order's state in words, e.g. "waiting for issuer (attempt 2, next try at …)"."""
    message = db.session.scalar(select(OutboundMessage).where(OutboundMessage.order_id == order.id)
                                .order_by(OutboundMessage.id.desc()).limit(1))
    waiting = message is not None and message.state in (OutboxState.PENDING, OutboxState.FAILED)
    attempts = message.attempts if message else 0
    next_at = message.next_attempt_at if message and message.state == OutboxState.PENDING else None
    error = message.last_error if message else None
    if message is not None and message.state == OutboxState.FAILED:
        text = _l("%(issuer)s could not be reached after %(n)s attempts (%(error)s); the platform's "
                  "administrators have been told.", issuer=order.issuer.name, n=attempts, error=error or "-")
    elif waiting and attempts:
        text = _l("Waiting for issuer %(issuer)s (attempt %(n)s failed; next try at %(at)s).",
                  issuer=order.issuer.name, n=attempts, at=shown(next_at))
    elif waiting:
        text = _l("Sending to issuer %(issuer)s.", issuer=order.issuer.name)
    elif order.state == OrderState.CLOSED and order.close_reason in CLOSED_TEXT:
        text = CLOSED_TEXT[order.close_reason]
    else:
        text = STATE_TEXT[order.state]
    return Progress(state=order.state.value, waiting=waiting, attempts=attempts, next_attempt_at=next_at,
                    last_error=error, text=str(text))


STATE_TEXT = {
    OrderState.DRAFT: _l("Not yet sent to the issuer."),
    OrderState.APPLIED: _l("Sent; waiting for the issuer's decision."),
    OrderState.CANCELLED: _l("Cancelled."),
    OrderState.APPROVED: _l("Approved; waiting for the letter."),
    OrderState.REJECTED: _l("Rejected by the issuer."),
    OrderState.ISSUED: _l("Letter issued; bind it to your bid."),
    OrderState.BOUND_TO_BID: _l("Bound to your bid."),
    OrderState.VERIFIED_AT_OPENING: _l("Verified at the opening."),
    OrderState.RELEASED: _l("Released (退保)."),
    OrderState.CLAIMED: _l("A claim was filed on this letter."),
    OrderState.PAID: _l("The issuer paid the claim."),
    OrderState.DENIED: _l("The issuer denied the claim."),
    OrderState.CLOSED: _l("Closed."),
}
CLOSED_TEXT = {  # by guarantees.closing.CloseReason
    "release_confirmed": _l("Closed: the issuer confirmed the release."),
    "claim_paid": _l("Closed: the issuer paid the claim."),
    "expired": _l("Closed: the letter expired."),
}


def requirement_for(actor_org: Organisation | None, tender: Tender, lot: Lot) -> Requirement:
    """The requirement as shown to a bidder (re-exported for the pages and the API)."""
    return bond_requirement(tender, _lot(tender, lot), actor_org)


__all__ = ["Form", "Offer", "Progress", "Unavailable", "apply_for_guarantee", "cancel_order", "live_order",
           "offers", "order_by_no", "order_progress", "orders_for_tender", "orders_of", "require_bidder",
           "require_open", "requirement_for", "unavailable_products", "use_waiver"]
