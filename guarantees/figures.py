"""The figures a trading centre reports on e-guarantees (电子保函统计), per period and region.

Per month (``2025-03``), quarter (``2025-Q1``) or year (``2025``), in Beijing time, optionally for a
region (administrative division code; ``370200`` covers its districts ``3702xx``):

* guarantees issued (letters whose issue time falls in the period) and the total amount guaranteed —
  working capital a cash bond would have locked;
* premiums paid, and premiums saved against the policy's reference rate frozen on each order:
  Σ max(0, round_half_up(amount × reference‰ / 1000, 2) − premium);
* waivers used and the bond amount they waived.

:func:`aggregate` is pure (rows in, figures out); :func:`collect` queries the rows; :func:`write_csv`
writes a table.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TextIO

from sqlalchemy import select

from bidding.models import Tender
from core.clock import BEIJING
from core.db import db
from guarantees.lifecycle import ISSUED_OR_LATER
from guarantees.models import BondWaiver, GuaranteeOrder
from guarantees.rates import round_money, saving

ZERO = Decimal("0.00")
_PERIOD = re.compile(r"^(?P<year>\d{4})(?:-(?:(?P<month>\d{2})|[Qq](?P<quarter>[1-4])))?$")
CSV_COLUMNS = ("period", "region", "guarantees_issued", "guaranteed_amount", "premiums_paid", "premiums_saved",
               "waivers", "bond_waived")


@dataclass(frozen=True)
class Period:
    label: str
    kind: str  # month | quarter | year
    start: datetime  # aware UTC, inclusive
    end: datetime    # aware UTC, exclusive


def _beijing_midnight(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=BEIJING).astimezone(UTC)


def parse_period(text: str) -> Period:
    """``2025`` (year), ``2025-Q1`` (quarter) or ``2025-03`` (month); ValueError saying what is accepted."""
    match = _PERIOD.match((text or "").strip())
    month = int(match["month"]) if match and match["month"] else None
    if not match or (month is not None and not 1 <= month <= 12):
        raise ValueError("a period is a year (2025), a quarter (2025-Q1) or a month (2025-03)")
    year = int(match["year"])
    if month is not None:
        first, months, kind, label = month, 1, "month", f"{year}-{month:02d}"
    elif match["quarter"]:
        quarter = int(match["quarter"])
        first, months, kind, label = 3 * quarter - 2, 3, "quarter", f"{year}-Q{quarter}"
    else:
        first, months, kind, label = 1, 12, "year", str(year)
    end_month = first + months
    end = _beijing_midnight(year + (end_month - 1) // 12, (end_month - 1) % 12 + 1)
    return Period(label, kind, _beijing_midnight(year, first), end)


@dataclass(frozen=True)
class OrderRow:
    amount: Decimal
    premium: Decimal
    reference_permille: Decimal | None


@dataclass(frozen=True)
class WaiverRow:
    bond_amount: Decimal | None


@dataclass(frozen=True)
class Figures:
    period: str
    region: str | None
    guarantees_issued: int
    guaranteed_amount: Decimal
    premiums_paid: Decimal
    premiums_saved: Decimal
    waivers: int
    bond_waived: Decimal

    def as_dict(self) -> dict[str, str | int | None]:
        return {name: (str(v) if isinstance(v := getattr(self, name), Decimal) else v) for name in CSV_COLUMNS}


def aggregate(period: str, region: str | None, orders: Iterable[OrderRow], waivers: Iterable[WaiverRow]) -> Figures:
    """Sum the rows of one period (pure)."""
    count, amount, paid, saved = 0, ZERO, ZERO, ZERO
    for row in orders:
        count += 1
        amount += row.amount
        paid += row.premium
        saved += saving(row.amount, row.premium, row.reference_permille)
    waiver_count, waived = 0, ZERO
    for row in waivers:
        waiver_count += 1
        waived += row.bond_amount or ZERO
    return Figures(period=period, region=region, guarantees_issued=count, guaranteed_amount=round_money(amount),
                   premiums_paid=round_money(paid), premiums_saved=round_money(saved), waivers=waiver_count,
                   bond_waived=round_money(waived))


def region_prefix(region: str | None) -> str | None:
    """``370200`` → ``3702`` (the city and its districts); None for every region."""
    if not region:
        return None
    region = region.strip()
    return region.rstrip("0") or region


def collect(period: Period, region: str | None = None) -> Figures:
    """Query the period's issued letters and waivers and aggregate them."""
    prefix = region_prefix(region)
    orders = (select(GuaranteeOrder.amount, GuaranteeOrder.premium, GuaranteeOrder.reference_permille)
              .join(Tender, Tender.id == GuaranteeOrder.tender_id)
              .where(GuaranteeOrder.state.in_(list(ISSUED_OR_LATER)), GuaranteeOrder.issued_at >= period.start,
                     GuaranteeOrder.issued_at < period.end))
    waivers = (select(BondWaiver.bond_amount).join(Tender, Tender.id == BondWaiver.tender_id)
               .where(BondWaiver.created_at >= period.start, BondWaiver.created_at < period.end))
    if prefix:
        orders = orders.where(Tender.region.startswith(prefix))
        waivers = waivers.where(Tender.region.startswith(prefix))
    return aggregate(period.label, region, (OrderRow(*row) for row in db.session.execute(orders)),
                     (WaiverRow(*row) for row in db.session.execute(waivers)))


def write_csv(rows: Iterable[Figures], out: TextIO) -> None:
    """Write figures as CSV with a header row (amounts in CNY with 2 decimals)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for figures in rows:
        data = figures.as_dict()
        writer.writerow(["" if data[c] is None else data[c] for c in CSV_COLUMNS])
