"""Premiums (保费) and the platform's rate cap (费率上限). Pure: Decimal in, Decimal or a refusal out.

``premium = max(minimum_fee, round_half_up(amount × rate‰ / 1000, 2))``, then capped by the product's
maximum fee (DOMAIN.md §4). The rate is per issuer product in per mille (‰); the platform's rate
policy caps it (e.g. lowered from 1.5‰ to 1‰). A product rate above the cap is refused when it is
set; lowering the cap below an existing rate never rewrites that rate — the product just stops being
offered, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from flask_babel import lazy_gettext as _l

from core.errors import RuleViolation, ValidationFailed

CENT = Decimal("0.01")
PERMILLE_PLACES = Decimal("0.0001")  # ProductRate.rate_permille is Numeric(8, 4)
MAX_PERMILLE = Decimal("1000")


def round_money(value: Decimal) -> Decimal:
    """Round to the fen (分), half up."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def permille_text(rate: Decimal) -> str:
    """A rate as people read it: ``1.5‰`` (no trailing zeros)."""
    text = format(rate.normalize(), "f")
    return f"{text}‰"


def money_text(value: Decimal) -> str:
    return f"{round_money(value):,}"


def as_decimal(value: Any, field: str) -> Decimal:
    """``value`` as a finite Decimal (floats refused: they are not exact), else ValidationFailed."""
    if isinstance(value, float | bool):
        raise ValidationFailed(fields={field: [_l("Give an exact decimal number (as text), not a float.")]})
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        result = None
    if result is None or not result.is_finite():
        raise ValidationFailed(fields={field: [_l("Enter a number such as 1.25.")]})
    return result


class RateAboveCap(RuleViolation):
    code = "rate_above_cap"
    default_message = _l("The rate %(rate)s is above the platform's cap of %(cap)s; set a rate of %(cap)s or less.")

    def __init__(self, rate: Decimal, cap: Decimal):
        super().__init__(rate=permille_text(rate), cap=permille_text(cap),
                         fields={"rate_permille": [_l("At most %(cap)s.", cap=permille_text(cap))]})


def check_rate(rate: Decimal, field: str = "rate_permille") -> Decimal:
    """A rate (a product's, the cap, the reference) must be above 0‰ and below 1000‰, with at most 4 decimals.

    ``field`` names the input the refusal is shown beside.
    """
    if rate <= 0:
        raise ValidationFailed(_l("A premium rate must be greater than 0‰."), code="rate_not_positive",
                               fields={field: [_l("Enter a rate greater than 0, e.g. 1.0.")]})
    if rate >= MAX_PERMILLE:
        raise ValidationFailed(fields={field: [_l("A rate is given in per mille (‰); enter less than 1000.")]})
    if rate != rate.quantize(PERMILLE_PLACES):
        raise ValidationFailed(fields={field: [_l("Use at most 4 decimal places.")]})
    return rate


def check_under_cap(rate: Decimal, cap: Decimal | None) -> None:
    """Refuse a product rate above the platform's cap (no cap: nothing to check)."""
    if cap is not None and rate > cap:
        raise RateAboveCap(rate, cap)


def check_fees(minimum_fee: Decimal, maximum_fee: Decimal | None) -> None:
    if minimum_fee < 0:
        raise ValidationFailed(fields={"minimum_fee": [_l("The minimum fee cannot be negative.")]})
    if minimum_fee != round_money(minimum_fee):
        raise ValidationFailed(fields={"minimum_fee": [_l("Use at most 2 decimal places (fen).")]})
    if maximum_fee is not None:
        if maximum_fee != round_money(maximum_fee):
            raise ValidationFailed(fields={"maximum_fee": [_l("Use at most 2 decimal places (fen).")]})
        if maximum_fee < minimum_fee or maximum_fee <= 0:
            raise ValidationFailed(fields={"maximum_fee": [_l(
                "The maximum fee must be positive and at least the minimum fee (%(minimum)s).",
                minimum=money_text(minimum_fee))]})


def premium(amount: Decimal, rate_permille: Decimal, minimum_fee: Decimal,
            maximum_fee: Decimal | None = None) -> Decimal:
    """The premium for guaranteeing ``amount`` at ``rate_permille``: at least the minimum, at most the maximum."""
    for name, value in (("amount", amount), ("rate_permille", rate_permille), ("minimum_fee", minimum_fee),
                        ("maximum_fee", maximum_fee)):
        if value is not None and not isinstance(value, Decimal):
            raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")
    if amount <= 0:
        raise ValueError("the guaranteed amount must be positive")
    if rate_permille <= 0:
        raise ValueError("the rate must be positive")
    if minimum_fee < 0 or (maximum_fee is not None and maximum_fee < minimum_fee):
        raise ValueError("fees must satisfy 0 <= minimum_fee <= maximum_fee")
    fee = max(minimum_fee, round_money(amount * rate_permille / 1000))
    if maximum_fee is not None:
        fee = min(fee, maximum_fee)
    return round_money(fee)


def reference_premium(amount: Decimal, reference_permille: Decimal | None) -> Decimal:
    """What the premium would have been at the policy's reference rate (for "premiums saved")."""
    if reference_permille is None:
        return Decimal("0.00")
    return round_money(amount * reference_permille / 1000)


def saving(amount: Decimal, premium_paid: Decimal, reference_permille: Decimal | None) -> Decimal:
    """Premium saved by one order against the reference rate, never below zero."""
    return max(Decimal("0.00"), reference_premium(amount, reference_permille) - premium_paid)


@dataclass(frozen=True)
class Availability:
    """Whether a product can be offered now, and if not, why (shown next to it, never hidden silently)."""

    offerable: bool
    code: str = ""
    reason: Any = ""

    def __bool__(self) -> bool:
        return self.offerable


def availability(*, is_active: bool, issuer_admitted: bool, rate: Decimal | None, cap: Decimal | None,
                 issuer_kind_allowed: bool = True) -> Availability:
    """Decide whether a product is offerable: active, admitted issuer, a rate in force, under the cap."""
    if not issuer_admitted:
        return Availability(False, "issuer_not_admitted", _l("The issuer is not admitted on this platform."))
    if not is_active:
        return Availability(False, "product_inactive", _l("The issuer has withdrawn this product."))
    if not issuer_kind_allowed:
        return Availability(False, "form_not_accepted",
                            _l("The tender documents do not accept guarantees from this kind of issuer."))
    if rate is None:
        return Availability(False, "no_rate", _l("The product has no rate in force yet."))
    if cap is not None and rate > cap:
        return Availability(False, "rate_above_cap", _l(
            "Its rate %(rate)s is above the platform's cap of %(cap)s; the issuer must lower it.",
            rate=permille_text(rate), cap=permille_text(cap)))
    return Availability(True)
