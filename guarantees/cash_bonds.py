"""Cash bid bonds (现金投标保证金): the tenderer's confirmation that a bidder's bond arrived.

The platform never holds money: the bidder transfers the bond from its basic account (基本账户, 条例 §26)
to the tenderer's or agency's account, and the tender's staff record the receipt here, so the check at
the opening (:mod:`guarantees.opening`) can count a cash bond as the bidder's bond for the lot.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import ForeignKey, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bidding.models import Lot, Tender
from core import audit
from core.actor import Actor
from core.clock import as_utc, now
from core.db import db
from core.errors import Forbidden, RuleViolation, ValidationFailed
from core.identity.models import Organisation, Role
from guarantees.rates import money_text
from guarantees.requirements import Form, bond_requirement


class CashBond(db.Model):
    """A cash bond received from a bidder for a lot, as confirmed by the tender's staff."""

    __tablename__ = "guarantee_cash_bonds"
    __table_args__ = (UniqueConstraint("lot_id", "bidder_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"))
    bidder_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    amount: Mapped[Decimal]
    reference: Mapped[str] = mapped_column(String(100))  # the bank transfer's reference
    received_at: Mapped[datetime]
    payer_account: Mapped[str | None] = mapped_column(String(40))  # the paying account, from the bank slip
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=now)

    bidder: Mapped[Organisation] = relationship()


def cash_bond_of(lot_id: int, bidder_id: int) -> CashBond | None:
    return db.session.scalar(select(CashBond).where(CashBond.lot_id == lot_id, CashBond.bidder_id == bidder_id))


def record_cash_bond(actor: Actor, tender: Tender, lot: Lot, bidder: Organisation, *, amount: Decimal,
                     reference: str, received_at: datetime, from_basic_account: bool,
                     payer_account: str | None = None) -> CashBond:
    """Record that ``bidder``'s cash bond for ``lot`` arrived (tender staff only; once per lot and bidder)."""
    if not (actor.role in (Role.TENDERER, Role.AGENCY) and tender.is_managed_by(actor.organisation_id)):
        raise Forbidden(_l("Only the tender's staff record the cash bonds they received."), code="not_tender_manager")
    requirement = bond_requirement(tender, lot, bidder)
    if Form.CASH not in requirement.accepted_forms:
        raise RuleViolation(_l("The bond policy of lot %(lot)s does not accept cash bonds."), code="cash_not_accepted",
                            lot=lot.code)
    if not from_basic_account:
        raise RuleViolation(_l("A cash bond must come from the bidder's basic account (基本账户); return this "
                               "transfer and ask for one from that account."), code="not_basic_account")
    if requirement.amount is not None and amount < requirement.amount:
        raise ValidationFailed(_l("The cash bond of %(amount)s CNY is less than the %(required)s CNY lot %(lot)s "
                                  "requires."), code="bond_too_small", amount=money_text(amount),
                               required=money_text(requirement.amount), lot=lot.code)
    if not (reference or "").strip():
        raise ValidationFailed(_l("Give the bank transfer's reference."), code="reference_missing")
    if cash_bond_of(lot.id, bidder.id) is not None:
        raise RuleViolation(_l("A cash bond of %(bidder)s for lot %(lot)s is already recorded."),
                            code="cash_bond_exists", bidder=bidder.name, lot=lot.code)
    row = CashBond(tender_id=tender.id, lot_id=lot.id, bidder_id=bidder.id, amount=amount,
                   reference=reference.strip()[:100], received_at=as_utc(received_at), recorded_by_id=actor.person_id,
                   payer_account=(payer_account or "").strip()[:40] or None)
    db.session.add(row)
    db.session.flush()
    audit.record(actor, "guarantee.cash_bond.recorded", "tender", tender.id,
                 {"lot": lot.code, "bidder_uscc": bidder.uscc, "amount": str(amount),
                  "received_at": row.received_at.isoformat(), "payer_account": row.payer_account})
    return row
