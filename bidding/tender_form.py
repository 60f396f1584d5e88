"""Parsing of the tender pages' HTML forms: strings in, typed values or per-field messages out.

Dates are entered with ``datetime-local`` inputs in Beijing time (北京时间) and stored as aware UTC.
Input names follow the domain's field names (``bid_deadline_at``, ``lots.0.estimated_price``) so that
a rule violation reported for a field is shown next to that field's input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from flask_babel import lazy_gettext as _l

from bidding.models import DecryptionMode, ProcurementCategory, Regime
from core.clock import BEIJING, beijing

PERIOD_FIELDS = ("documents_from_at", "documents_until_at", "question_deadline_at", "bid_deadline_at")
LOT_FIELDS = ("title", "description", "estimated_price", "ceiling_price", "bond_amount")
MAX_LOTS = 20
CENT = Decimal("0.01")


@dataclass
class Parsed:
    """Cleaned values and, per field name, the messages to show next to its input."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, list[Any]] = field(default_factory=dict)
    lot_rows: list[int] = field(default_factory=list)  # form row of each parsed lot (blank rows skipped)

    def fail(self, name: str, message: Any) -> None:
        self.errors.setdefault(name, []).append(message)

    @property
    def ok(self) -> bool:
        return not self.errors


def parse_beijing(raw: str | None) -> datetime | None:
    """``2025-03-01T09:30`` typed in Beijing time -> aware UTC; empty -> None; ValueError if malformed."""
    raw = (raw or "").strip()
    if not raw:
        return None
    value = datetime.fromisoformat(raw)
    if value.tzinfo is None:
        value = value.replace(tzinfo=BEIJING)
    return value.astimezone(UTC)


def beijing_input(value: datetime | None) -> str:
    """The value of a ``datetime-local`` input showing ``value`` in Beijing time."""
    return beijing(value).strftime("%Y-%m-%dT%H:%M") if value else ""


def parse_money(raw: str | None) -> Decimal | None:
    """``1,234.5`` -> Decimal('1234.50'); empty -> None; ValueError if not a number."""
    raw = (raw or "").replace(",", "").replace("，", "").strip()
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError(raw) from None
    if not value.is_finite():
        raise ValueError(raw)
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _text(form, name: str) -> str:
    return (form.get(name) or "").strip()


def _choice(parsed: Parsed, form, name: str, enum_cls) -> None:
    raw = _text(form, name)
    try:
        parsed.values[name] = enum_cls(raw)
    except ValueError:
        parsed.fail(name, _l("Choose one of the options."))


def _money(parsed: Parsed, form, name: str, target: dict, key: str, required: bool = False) -> None:
    try:
        value = parse_money(form.get(name))
    except ValueError:
        parsed.fail(name, _l("Enter an amount in yuan, e.g. 1200000.00."))
        return
    if value is None and required:
        parsed.fail(name, _l("Enter an amount in yuan."))
        return
    target[key] = value


def parse_lots(form, parsed: Parsed) -> list[dict[str, Any]]:
    """Lot rows ``lots.N.*``; rows left entirely blank are ignored."""
    lots: list[dict[str, Any]] = []
    for i in range(MAX_LOTS):
        names = {f: f"lots.{i}.{f}" for f in LOT_FIELDS}
        if not any(_text(form, n) for n in names.values()):
            continue
        lot: dict[str, Any] = {"title": _text(form, names["title"]),
                               "description": _text(form, names["description"])}
        if not lot["title"]:
            parsed.fail(names["title"], _l("Enter the lot's title."))
        _money(parsed, form, names["estimated_price"], lot, "estimated_price", required=True)
        _money(parsed, form, names["ceiling_price"], lot, "ceiling_price")
        _money(parsed, form, names["bond_amount"], lot, "bond_amount")
        lots.append(lot)
        parsed.lot_rows.append(i)
    if not lots:
        parsed.fail("lots", _l("Add at least one lot (标段)."))
    return lots


def parse_tender_form(form) -> Parsed:
    """The draft form (create and edit) -> the fields the draft services take."""
    parsed = Parsed()
    values = parsed.values
    values["title"] = _text(form, "title")
    if not values["title"]:
        parsed.fail("title", _l("Enter the tender's title."))
    values["description"] = _text(form, "description")
    _choice(parsed, form, "regime", Regime)
    _choice(parsed, form, "category", ProcurementCategory)
    _choice(parsed, form, "decryption_mode", DecryptionMode)
    values["is_mandatory"] = form.get("is_mandatory") in ("1", "on", "true", "y")
    _money(parsed, form, "estimated_price", values, "estimated_price", required=True)
    _money(parsed, form, "ceiling_price", values, "ceiling_price")
    for name in PERIOD_FIELDS:
        try:
            values[name] = parse_beijing(form.get(name))
        except ValueError:
            parsed.fail(name, _l("Enter a date and time (Beijing time)."))
    raw_days = _text(form, "bid_validity_days")
    try:
        values["bid_validity_days"] = int(raw_days)
    except ValueError:
        parsed.fail("bid_validity_days", _l("Enter a whole number of days."))
    values["lots"] = parse_lots(form, parsed)
    return parsed


def fields_on_rows(fields: dict[str, Any], lot_rows: list[int]) -> dict[str, Any]:
    """Rename ``lots.K.x`` (K-th lot given to the service) to the form row the lot was typed in."""
    out: dict[str, Any] = {}
    for name, messages in fields.items():
        parts = name.split(".")
        if len(parts) == 3 and parts[0] == "lots" and parts[1].isdigit() and int(parts[1]) < len(lot_rows):
            name = f"lots.{lot_rows[int(parts[1])]}.{parts[2]}"
        out.setdefault(name, []).extend(messages)
    return out


def parse_deadline(form, parsed: Parsed, name: str = "new_deadline_at") -> datetime | None:
    """An optional Beijing-time date field of a small form."""
    try:
        return parse_beijing(form.get(name))
    except ValueError:
        parsed.fail(name, _l("Enter a date and time (Beijing time)."))
        return None


def form_values_of(tender) -> dict[str, Any]:
    """The draft form's input values for an existing tender."""
    values: dict[str, Any] = {
        "title": tender.title, "description": tender.description, "regime": tender.regime.value,
        "category": tender.category.value, "decryption_mode": tender.decryption_mode.value,
        "is_mandatory": tender.is_mandatory, "estimated_price": tender.estimated_price,
        "ceiling_price": tender.ceiling_price if tender.ceiling_price is not None else "",
        "bid_validity_days": tender.bid_validity_days,
    }
    for name in PERIOD_FIELDS:
        values[name] = beijing_input(getattr(tender, name))
    for i, lot in enumerate(tender.lots):
        for f in LOT_FIELDS:
            value = getattr(lot, f)
            values[f"lots.{i}.{f}"] = "" if value is None else value
    return values
