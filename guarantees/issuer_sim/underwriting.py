"""The reference issuer's underwriting and claim rules (核保与理赔规则): pure functions, data in, decision out.

An order (投保/申请) is approved unless the amount is above the issuer's limit, the principal (the
bidder) is on the issuer's deny list, or the bid deadline has already passed. A claim (索赔) is paid
unless the guarantee was released, cancelled or already paid, the demand arrived after expiry, or it
asks for more than the guarantee amount.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import lazy_gettext as _l

from core.clock import BEIJING
from guarantees.letters import MAX_AMOUNT
from guarantees.protocol import MalformedMessage, parse_timestamp

GUARANTEE_TYPES = ("plain", "sealed")  # 明文保函 / 密文保函
MAX_VALIDITY_DAYS = 3650


@dataclass(frozen=True)
class Rules:
    """An issuer's appetite: the largest amount per guarantee and the principals it refuses."""

    amount_limit: Decimal | None = Decimal("5000000")
    denied_usccs: frozenset[str] = field(default_factory=frozenset)
    extra_validity_days: int = 0  # days the issuer adds beyond the bid validity


@dataclass(frozen=True)
class OrderTerms:
    """The fields of an ``OrderApply`` the issuer works with, checked and typed."""

    order_no: str
    tender_code: str
    tender_title: str
    lot_code: str
    lot_title: str
    bid_deadline: datetime
    validity_days: int
    amount: Decimal
    guarantee_type: str
    beneficiary_name: str
    beneficiary_uscc: str
    principal_name: str
    principal_uscc: str
    product_code: str
    premium: Decimal
    rate_permille: Decimal
    extra_validity_days: int = 0                # days the tender documents add beyond the bid validity
    valid_until_required: datetime | None = None  # the platform's own reckoning of the required end


@dataclass(frozen=True)
class Decision:
    approved: bool
    reason: Any = ""  # a lazy gettext string when refused


def _text(data: Mapping[str, Any], *names: str, required: bool = True) -> str:
    for name in names:
        value = data.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    if required:
        raise MalformedMessage(f"data.{names[0]} must be a non-empty string")
    return ""


def _nested(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name)
    return value if isinstance(value, Mapping) else {}


def _decimal(data: Mapping[str, Any], *names: str, positive: bool = False) -> Decimal:
    text = _text(data, *names)
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise MalformedMessage(f"data.{names[0]} must be a decimal string such as \"125000.00\"") from None
    if not value.is_finite() or value < 0 or (positive and value == 0) or value > MAX_AMOUNT:
        raise MalformedMessage(f"data.{names[0]} must be a {'positive' if positive else 'non-negative'} amount "
                               f"of at most {MAX_AMOUNT}")
    if value.as_tuple().exponent < -4:
        raise MalformedMessage(f"data.{names[0]} has more than four decimal places")
    return value


def parse_order(order_no: str, data: Mapping[str, Any]) -> OrderTerms:
    """Check an ``OrderApply`` payload; ``MalformedMessage`` names the first field to fix.

    Tender and lot may come flat (``tender_code``) or nested (``tender: {code, title}``); the amount
    as ``amount`` or ``guarantee_amount``.
    """
    tender, lot = _nested(data, "tender"), _nested(data, "lot")
    beneficiary, principal = _nested(data, "beneficiary"), _nested(data, "principal")
    if data.get("order_no") not in (None, order_no):
        raise MalformedMessage("data.order_no differs from the message's order_no")
    validity = data.get("validity_days")
    if isinstance(validity, bool) or not isinstance(validity, int) or not 1 <= validity <= MAX_VALIDITY_DAYS:
        raise MalformedMessage(f"data.validity_days must be a whole number of days from 1 to {MAX_VALIDITY_DAYS}")
    kind = data.get("guarantee_type")
    if kind not in GUARANTEE_TYPES:
        raise MalformedMessage("data.guarantee_type must be \"plain\" or \"sealed\"")
    deadline = data.get("bid_deadline")
    if not isinstance(deadline, str):
        raise MalformedMessage("data.bid_deadline must be a timestamp like 2025-01-31T08:00:00Z")
    extra = data.get("extra_validity_days", 0)
    if isinstance(extra, bool) or not isinstance(extra, int) or not 0 <= extra <= MAX_VALIDITY_DAYS:
        raise MalformedMessage(f"data.extra_validity_days must be a whole number of days from 0 to {MAX_VALIDITY_DAYS}")
    required = data.get("valid_until_required")
    if required is not None and not isinstance(required, str):
        raise MalformedMessage("data.valid_until_required must be a timestamp like 2025-01-31T08:00:00Z")
    return OrderTerms(
        order_no=order_no,
        tender_code=_text(data, "tender_code") if "tender_code" in data else _text(tender, "code"),
        tender_title=_text(data, "tender_title") if "tender_title" in data else _text(tender, "title"),
        lot_code=_text(data, "lot_code") if "lot_code" in data else _text(lot, "code"),
        lot_title=(_text(data, "lot_title", required=False) if "lot_title" in data
                   else _text(lot, "title", required=False)),
        bid_deadline=parse_timestamp(deadline),
        validity_days=validity,
        amount=_decimal(data, "amount", "guarantee_amount", positive=True),
        guarantee_type=kind,
        beneficiary_name=_text(beneficiary, "name"), beneficiary_uscc=_text(beneficiary, "uscc"),
        principal_name=_text(principal, "name"), principal_uscc=_text(principal, "uscc"),
        product_code=_text(data, "product_code", required=False),
        premium=_decimal(data, "premium") if "premium" in data else Decimal("0"),
        rate_permille=_decimal(data, "rate_permille") if "rate_permille" in data else Decimal("0"),
        extra_validity_days=extra,
        valid_until_required=parse_timestamp(required) if required is not None else None,
    )


def _cny(amount: Decimal) -> str:
    return format(amount, ",.2f")


def decide(terms: OrderTerms, rules: Rules, *, now: datetime) -> Decision:
    """Approve or refuse an order, with the reason a bidder reads when refused."""
    if rules.amount_limit is not None and terms.amount > rules.amount_limit:
        return Decision(False, _l("The guarantee amount %(amount)s CNY is above this issuer's limit of %(limit)s CNY "
                                  "per guarantee; choose another issuer.",
                                  amount=_cny(terms.amount), limit=_cny(rules.amount_limit)))
    if terms.principal_uscc.upper() in rules.denied_usccs:
        return Decision(False, _l("The issuer does not guarantee %(name)s (%(uscc)s); choose another issuer.",
                                  name=terms.principal_name, uscc=terms.principal_uscc))
    if terms.bid_deadline <= now:
        return Decision(False, _l("The bid deadline has passed; a bid guarantee can no longer be issued for it."))
    return Decision(True)


def validity_period(issued_at: datetime, terms: OrderTerms, issuer_extra_days: int = 0) -> tuple[datetime, datetime]:
    """From the issue moment to the end of the Beijing day that ends the bid validity.

    The bid validity runs from the bid deadline for ``validity_days``, plus the larger of the extra days
    the tender documents ask for and those the issuer adds; the letter never ends before the platform's
    ``valid_until_required``.
    """
    days = terms.validity_days + max(terms.extra_validity_days, issuer_extra_days)
    end = terms.bid_deadline + timedelta(days=days)
    if terms.valid_until_required is not None and terms.valid_until_required > end:
        end = terms.valid_until_required
    until = datetime.combine(end.astimezone(BEIJING).date(), time(23, 59, 59), tzinfo=BEIJING)
    return issued_at, until.astimezone(issued_at.tzinfo)


def guarantee_number(code: str, day: date, sequence: int) -> str:
    """``{code}-{yyyymmdd}-{6 digits}``, e.g. ``BANK1-20250131-000042``."""
    if not 1 <= sequence <= 999_999:
        raise ValueError("at most 999,999 guarantees a day")
    return f"{code}-{day:%Y%m%d}-{sequence:06d}"


@dataclass(frozen=True)
class ClaimFacts:
    """What the issuer knows when it decides a claim (索赔)."""

    letter_status: str          # valid | released | claimed | paid | cancelled (before this claim)
    valid_until: datetime
    guarantee_amount: Decimal
    claim_amount: Decimal
    received_at: datetime       # when the demand reached the issuer
    released_at: datetime | None = None


@dataclass(frozen=True)
class ClaimDecision:
    paid: bool
    amount_paid: Decimal
    reason: Any = ""


def decide_claim(facts: ClaimFacts) -> ClaimDecision:
    """Pay on first demand (见索即付) unless the guarantee no longer stands or the demand is out of bounds."""
    zero = Decimal("0.00")
    if facts.letter_status == "released" or facts.released_at is not None and facts.released_at <= facts.received_at:
        return ClaimDecision(False, zero, _l("The guarantee was released before the claim arrived."))
    if facts.letter_status == "cancelled":
        return ClaimDecision(False, zero, _l("The guarantee was cancelled."))
    if facts.letter_status == "paid":
        return ClaimDecision(False, zero, _l("The guarantee has already been paid out."))
    if facts.received_at > facts.valid_until:
        return ClaimDecision(False, zero, _l("The claim arrived after the guarantee expired."))
    if facts.claim_amount <= 0 or facts.claim_amount > facts.guarantee_amount:
        return ClaimDecision(False, zero, _l("The claim of %(claim)s CNY is not between 0 and the guarantee amount "
                                             "of %(amount)s CNY.", claim=_cny(facts.claim_amount),
                                             amount=_cny(facts.guarantee_amount)))
    return ClaimDecision(True, facts.claim_amount.quantize(Decimal("0.01")))
