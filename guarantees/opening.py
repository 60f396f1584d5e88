"""The guarantee check at the opening (开标保函验证): every bidder's bond, per lot (DOMAIN §4).

The bidders checked are every organisation with a current sealed bid for the lot, plus any with a letter
bound to the lot or a waiver for it. Each has an e-guarantee (all letter checks), a waiver the policy
opens to it, a cash bond the tender's staff recorded, or nothing: then the check fails when the lot
requires a bond. The opening record reads the results through the provider registered with
:func:`bidding.opening_record.register_bond_status` at import.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from bidding.models import Lot, Tender
from bidding.opening_record import register_bond_status
from bidding.sealed_models import Bid
from core import audit
from core.actor import Actor
from core.clock import as_utc, now
from core.db import db
from core.errors import Forbidden, RuleViolation
from core.identity.access import is_admin
from core.identity.models import Organisation, Role
from guarantees import lifecycle, outbox, protocol
from guarantees.cash_bonds import CashBond
from guarantees.lifecycle import OrderState
from guarantees.models import BondWaiver, GuaranteeOrder, GuaranteeType, OpeningCheck
from guarantees.rates import money_text
from guarantees.requirements import Form, bond_requirement
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


def _bond_check(tender: Tender, lot: Lot, bidder: Organisation, cash: CashBond | None) -> tuple[bool, list[Check]]:
    """A bidder without letter or waiver: a recorded cash bond, or no bond at all."""
    requirement = bond_requirement(tender, lot, bidder)
    if cash is not None:
        deadline = as_utc(tender.bid_deadline_at)
        checks = [Check("cash_bond", Form.CASH in requirement.accepted_forms, str(
                      _l("cash bond of %(amount)s CNY (transfer %(reference)s).", amount=money_text(cash.amount),
                         reference=cash.reference) if Form.CASH in requirement.accepted_forms else
                      _l("the bond policy of this lot does not accept cash."))),
                  Check("amount", requirement.amount is None or cash.amount >= requirement.amount, str(
                      _l("%(amount)s CNY against %(required)s CNY required.", amount=money_text(cash.amount),
                         required=money_text(requirement.amount or 0)))),
                  Check("received_in_time", as_utc(cash.received_at) <= deadline, str(
                      _l("received %(at)s, deadline %(deadline)s.", at=iso(cash.received_at), deadline=iso(deadline))))]
        return all(c.passed for c in checks), checks
    if requirement.required:
        return False, [Check("bond", False, str(_l(
            "no e-guarantee, cash bond or waiver, although lot %(lot)s requires a bond of %(amount)s CNY.",
            lot=lot.code, amount=money_text(requirement.amount or 0))))]
    return True, [Check("bond", True, str(_l("lot %(lot)s requires no bond.", lot=lot.code)))]


def _check_bidder(actor: Actor, tender: Tender, lot: Lot, bidder_id: int, order: GuaranteeOrder | None,
                  waiver: BondWaiver | None, cash: CashBond | None) -> OpeningCheck:
    bidder = db.session.get(Organisation, bidder_id)
    if order is not None:
        report = verify_stored_letter(order, expected=Expectation(tender, lot, bidder))
        checks, passed, waiver = report.checks, report.ok, None
        if passed:
            _verified(actor, order)
    elif waiver is not None:
        requirement = bond_requirement(tender, lot, bidder)
        passed = requirement.waiver_kind == waiver.kind
        checks = [Check("waiver", passed, str(
            _l("%(kind)s waiver accepted.", kind=waiver.kind.value) if passed else
            _l("the %(kind)s waiver is not open to this bidder: %(reason)s", kind=waiver.kind.value,
               reason=requirement.waiver_refusal or "-")))]
    else:
        passed, checks = _bond_check(tender, lot, bidder, cash)
    return _store_check(tender, lot, bidder_id, order, waiver, passed, checks)


def _lot_bidders(lot: Lot) -> tuple[list[int], dict, dict, dict]:
    orders = {o.bidder_id: o for o in db.session.scalars(select(GuaranteeOrder).where(
        GuaranteeOrder.lot_id == lot.id,
        GuaranteeOrder.state.in_([OrderState.BOUND_TO_BID, OrderState.VERIFIED_AT_OPENING])))}
    waivers = {w.bidder_id: w for w in db.session.scalars(select(BondWaiver).where(BondWaiver.lot_id == lot.id))}
    cash = {c.bidder_id: c for c in db.session.scalars(select(CashBond).where(CashBond.lot_id == lot.id))}
    bidders = set(db.session.scalars(select(Bid.organisation_id).where(Bid.lot_id == lot.id,
                                                                       Bid.is_current.is_(True))))
    return sorted(bidders | set(orders) | set(waivers)), orders, waivers, cash


def check_for_opening(actor: Actor, tender: Tender) -> list[OpeningCheck]:
    """Check every bidder's bond per lot at the opening; store and return the results.

    The bidders are every organisation with a current sealed bid for the lot, and any with a letter bound
    to it or a waiver for it. A passing letter becomes ``verified_at_opening``; sealed letters (密文保函)
    are then revealed to their issuer (``DecryptionNotice``). Re-running replaces the stored result.
    """
    _require_opening_rights(actor, tender)
    deadline = as_utc(tender.bid_deadline_at) if tender.bid_deadline_at else None
    if deadline is None or now() < deadline:
        raise OpeningTooEarly(deadline=iso(deadline))
    results: list[OpeningCheck] = []
    summary: list[dict[str, Any]] = []
    for lot in tender.lots:
        bidder_ids, orders, waivers, cash = _lot_bidders(lot)
        for bidder_id in bidder_ids:
            row = _check_bidder(actor, tender, lot, bidder_id, orders.get(bidder_id), waivers.get(bidder_id),
                                cash.get(bidder_id))
            results.append(row)
            summary.append({"lot": lot.code, "bidder_id": bidder_id, "passed": row.passed, "kind": bond_kind(row),
                            "order_no": orders[bidder_id].order_no if bidder_id in orders else None,
                            "failed": [c["name"] for c in row.checks if c["passed"] is False]})
    db.session.flush()
    audit.record(actor, "guarantee.opening_check", "tender", tender.id, {"results": summary})
    return results


def bond_kind(row: OpeningCheck) -> str:
    """waiver | cash_bond | e_guarantee | none: which bond the stored check found."""
    if row.order_id is not None:
        return "e_guarantee"
    if row.waiver_id is not None:
        return "waiver"
    return "cash_bond" if any(c["name"] == "cash_bond" for c in row.checks) else "none"


@register_bond_status
def opening_bond_status(tender: Tender, lot: Lot, organisation_id: int) -> dict[str, Any]:
    """The bond status of a bidder for the opening record: the stored check, else checked now."""
    row = db.session.scalar(select(OpeningCheck).where(OpeningCheck.lot_id == lot.id,
                                                       OpeningCheck.bidder_id == organisation_id))
    if row is None:
        actor = Actor.system(source="opening-record")
        _ids, orders, waivers, cash = _lot_bidders(lot)
        row = _check_bidder(actor, tender, lot, organisation_id, orders.get(organisation_id),
                            waivers.get(organisation_id), cash.get(organisation_id))
        db.session.flush()
        audit.record(actor, "guarantee.opening_check", "tender", tender.id,
                     {"results": [{"lot": lot.code, "bidder_id": organisation_id, "passed": row.passed,
                                   "kind": bond_kind(row)}]})
    requirement = bond_requirement(tender, lot, db.session.get(Organisation, organisation_id))
    return {"kind": bond_kind(row), "passed": row.passed, "required": requirement.required,
            "reasons": [c["reason"] for c in row.checks if c["passed"] is False] or
                       [c["reason"] for c in row.checks][:1]}


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
