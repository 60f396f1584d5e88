"""Decimal helpers shared by the evaluation methods: reading numbers, rounding, printing.

Every number is a :class:`~decimal.Decimal`; nothing here touches floats except to read a JSON float
through its shortest text (``0.15`` -> ``Decimal("0.15")``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

ROUNDING_MODES = {"half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN, "down": ROUND_DOWN}
# the arithmetic context of every evaluation: enough digits that sums of money are exact
CONTEXT = Context(prec=34, rounding=ROUND_HALF_EVEN)
ZERO, ONE, HUNDRED = Decimal(0), Decimal(1), Decimal(100)


@dataclass(frozen=True)
class Rounding:
    """How D, B, S, totals and subjective averages are rounded (取舍): ``places`` decimals, ``mode``."""

    places: int = 2
    mode: str = "half_up"

    def __call__(self, value: Decimal) -> Decimal:
        return value.quantize(Decimal(1).scaleb(-self.places), rounding=ROUNDING_MODES[self.mode],
                              context=CONTEXT)


def decimal_of(value: Any) -> Decimal | None:
    """``value`` (int, decimal string, Decimal or JSON float) as a finite Decimal, else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        value = repr(value)
    if not isinstance(value, int | str | Decimal):
        return None
    try:
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


def int_of(value: Any) -> int | None:
    """``value`` (an int or a string of digits) as an int, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def text(value: Decimal) -> str:
    """A decimal as a plain string, never in exponent form (``Decimal("1E+2")`` -> ``"100"``)."""
    return format(value, "f")


def mean(values: Iterable[Decimal]) -> Decimal:
    """The exact mean (to 34 digits) of ``values``, summed in ascending order so the order given never matters."""
    items = sorted(values)
    total = ZERO
    for item in items:
        total = CONTEXT.add(total, item)
    return CONTEXT.divide(total, Decimal(len(items)))
