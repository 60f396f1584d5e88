"""The guarantee check at the opening (开标保函验证): every bidder's letter or waiver, per lot.

Bids do not exist in the code base yet; a bid is keyed by (tender, lot, bidder organisation), and so is
this check: the bidders are those with a letter bound to the lot, or a waiver for it.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from bidding.models import Lot, Tender
from core import audit
from core.actor import Actor
from core.clock import as_utc, now
from core.db import db
from core.errors import Forbidden, RuleViolation
from core.identity.access import is_admin
from core.identity.models import Organisation, Role
from guarantees import lifecycle, outbox, protocol
from guarantees.lifecycle import OrderState
from guarantees.models import BondWaiver, GuaranteeOrder, GuaranteeType, OpeningCheck
from guarantees.requirements import bond_requirement
from guarantees.verification import Check, Expectation, iso, verify_stored_letter


class OpeningTooEarly(RuleViolation):
    code = "opening_not_reached"
    default_message = _l("Guarantees are checked at the opening, after the bid deadline (%(deadline)s).")


def _require_opening_rights(actor: Actor, tender: Tender) -> None:
    if is_admin(actor) or (actor.role in (Role.TENDERER, Role.AGENCY) and tender.is_managed_by(actor.organisation_id)):
        return
    raise Forbidden(_l("Only the tender's staff or the platform run the opening checks."), code="not_tender_manager")


def _store_check(tender: Tender, lot: Lot, bidder_id: int, order: GuaranteeOrder | None,
                 waiver: BondWaiver | None, passed: bool, checks: list[Check]) -> OpeningCheck:
    row = db.session.scalar(select(OpeningCheck).where(OpeningCheck.lot_id == lot.id,
                                                       OpeningCheck.bidder_id == bidder_id))
    if row is None:
        row = OpeningCheck(tender_id=tender.id, lot_id=lot.id, bidder_id=bidder_id)
        db.session.add(row)
    row.order_id = order.id if order else None
    row.waiver_id = waiver.id if waiver else None
    row.passed = passed
    row.checks = [{"name": c.name, "passed": c.passed, "reason": c.reason} for c in checks]
    row.checked_at = now()
    return row


def check_for_opening(actor: Actor, tender: Tender) -> list[OpeningCheck]:
    """Check every bidder's guarantee (or waiver) per lot at the opening; store and return the results.

    The bidders are those with a letter bound to the lot, or a waiver for it (bids are keyed by tender,
    lot and bidder). A passing letter becomes ``verified_at_opening``; sealed letters (密文保函) are then
    revealed to their issuer (``DecryptionNotice``). Re-running replaces the stored result.
    """
    _require_opening_rights(actor, tender)
    deadline = as_utc(tender.bid_deadline_at) if tender.bid_deadline_at else None
    if deadline is None or now() < deadline:
        raise OpeningTooEarly(deadline=iso(deadline))
    results: list[OpeningCheck] = []
    summary: list[dict[str, Any]] = []
    for lot in tender.lots:
        orders = {o.bidder_id: o for o in db.session.scalars(select(GuaranteeOrder).where(
            GuaranteeOrder.lot_id == lot.id,
            GuaranteeOrder.state.in_([OrderState.BOUND_TO_BID, OrderState.VERIFIED_AT_OPENING])))}
        waivers = {w.bidder_id: w for w in db.session.scalars(select(BondWaiver).where(BondWaiver.lot_id == lot.id))}
        for bidder_id in sorted(set(orders) | set(waivers)):
            bidder = db.session.get(Organisation, bidder_id)
            order = orders.get(bidder_id)
            if order is not None:
                report = verify_stored_letter(order, expected=Expectation(tender, lot, bidder))
                checks, passed, waiver = report.checks, report.ok, None
                if passed:
                    _verified(actor, order)
            else:
                waiver = waivers[bidder_id]
                requirement = bond_requirement(tender, lot, bidder)
                passed = requirement.waiver_kind == waiver.kind
                checks = [Check("waiver", passed, str(
                    _l("%(kind)s waiver accepted.", kind=waiver.kind.value) if passed else
                    _l("the %(kind)s waiver is not open to this bidder: %(reason)s", kind=waiver.kind.value,
                       reason=requirement.waiver_refusal or "-")))]
            results.append(_store_check(tender, lot, bidder_id, order, waiver, passed, checks))
            summary.append({"lot": lot.code, "bidder_id": bidder_id, "passed": passed,
                            "order_no": order.order_no if order else None,
                            "failed": [c.name for c in checks if c.passed is False]})
    db.session.flush()
    audit.record(actor, "guarantee.opening_check", "tender", tender.id, {"results": summary})
    return results


def _verified(actor: Actor, order: GuaranteeOrder) -> None:
    at = now()
    if order.state == OrderState.BOUND_TO_BID:
        lifecycle.transition(order, OrderState.VERIFIED_AT_OPENING)
        order.verified_at_opening = at
        audit.record(actor, "guarantee.order.verified", "guarantee_order", order.id,
                     {"order_no": order.order_no, "state": [OrderState.BOUND_TO_BID.value,
                                                            OrderState.VERIFIED_AT_OPENING.value]})
    if order.guarantee_type == GuaranteeType.SEALED and order.revealed_at is None:
        order.revealed_at = at
        outbox.queue(order, protocol.DECRYPTION_NOTICE, {"guarantee_no": order.guarantee_no,
                                                         "tender_code": order.tender.code,
                                                         "lot_code": order.lot.code, "opened_at": at})
