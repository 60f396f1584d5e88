"""Statistics for supervisors (统计): tenders, online openings, remote evaluations, times, materials, guarantees.

Everything is counted per calendar month (Beijing time) of the tender's publication (``published_at``), for a
range of days and optionally a region (administrative division code; ``370200`` covers ``3702xx``):

* tenders published, and how many of them are now at each stage (status);
* online openings (不见面开标): tenders whose decryption started, bids decrypted with the bidder's key, by the
  custodians' rebuilt opening key or both (double envelope), and bids whose decryption failed;
* evaluations, remote ones (远程异地评标: the draw request is marked remote), and the committee members seated
  (accepted or signed in) from the host region versus other regions;
* the average days from the notice to the opening (decryption start) and to the award notice (中标通知书);
* materials: current bids and their average sealed-envelope size;
* e-guarantees (电子保函) per month of issue, from :func:`guarantees.figures_for`: letters, amount covered,
  premiums paid and saved against the reference rate, bond waivers used and the bond they waived.

:func:`parse_query` reads the filters, :func:`collect` runs the queries and returns plain data (no ORM rows),
:func:`write_csv` writes one row per month. Averages are exact Decimals rounded half up to 0.1 day / 1 byte.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TextIO

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, select

from bidding.models import Tender, TenderStatus
from bidding.opening_models import BidOpening, BidOpeningStatus, DecryptMethod, OpeningSession
from bidding.sealed_models import Bid
from core.clock import BEIJING, as_utc, beijing, now
from core.db import db
from core.errors import ValidationFailed
from evaluation.pool_models import CommitteeMember, DrawRequest, DrawStatus, Expert, MemberStatus
from evaluation.result_models import Award
from evaluation.room_models import Evaluation
from guarantees import Figures, figures_for, parse_period

ZERO = Decimal("0.00")
DAY_SECONDS = Decimal(86400)
ONE_TENTH = Decimal("0.1")
MAX_MONTHS = 36
DEFAULT_MONTHS = 12
REGION_RE = re.compile(r"^\d{2,12}$")
STAGES: tuple[TenderStatus, ...] = (TenderStatus.PUBLISHED, TenderStatus.OPENING, TenderStatus.EVALUATION,
                                    TenderStatus.PUBLICITY, TenderStatus.AWARDED, TenderStatus.FAILED,
                                    TenderStatus.CANCELLED)
SEATED = (MemberStatus.ACCEPTED, MemberStatus.SIGNED_IN)


# -- the filters ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StatsQuery:
    """Publication days ``start``..``end`` (inclusive, Beijing time) and an optional region code."""

    start: date
    end: date
    region: str | None = None

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time(), tzinfo=BEIJING).astimezone(UTC)

    @property
    def end_at(self) -> datetime:
        """Exclusive: midnight after ``end``, Beijing time, in UTC."""
        return datetime.combine(self.end + timedelta(days=1), time(), tzinfo=BEIJING).astimezone(UTC)

    @property
    def months(self) -> list[str]:
        """Labels (``2025-03``) of every calendar month the range touches, oldest first."""
        first = self.start.year * 12 + self.start.month - 1
        last = self.end.year * 12 + self.end.month - 1
        return [f"{i // 12}-{i % 12 + 1:02d}" for i in range(first, last + 1)]


def default_query(today: date, region: str | None = None) -> StatsQuery:
    """The last 12 months: from the first day of the month 11 months ago to ``today``."""
    index = today.year * 12 + today.month - 1 - (DEFAULT_MONTHS - 1)
    return StatsQuery(date(index // 12, index % 12 + 1, 1), today, region)


def _day(args: Mapping[str, str], name: str, errors: dict[str, list]) -> date | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = [_l("Enter the date as YYYY-MM-DD, e.g. 2025-03-01.")]
        return None


def parse_query(args: Mapping[str, str], today: date | None = None) -> StatsQuery:
    """Read ``from``, ``to`` (YYYY-MM-DD) and ``region``; ValidationFailed names every field to fix."""
    today = today or beijing(now()).date()
    errors: dict[str, list] = {}
    start, end = _day(args, "from", errors), _day(args, "to", errors)
    region = (args.get("region") or "").strip() or None
    if region is not None and not REGION_RE.match(region):
        errors["region"] = [_l("Give an administrative division code such as 370200, or leave it empty for "
                               "every region.")]
    if errors:
        raise ValidationFailed(fields=errors)
    start = start or default_query(end or today).start
    end = end or today
    if end < start:
        raise ValidationFailed(fields={"to": [_l("The end date must not be before the start date.")]})
    query = StatsQuery(start, end, region)
    if len(query.months) > MAX_MONTHS:
        raise ValidationFailed(fields={"from": [_l("Choose a range of at most %(n)s months.", n=MAX_MONTHS)]})
    return query


def region_prefix(region: str | None) -> str | None:
    """``370200`` → ``3702`` (the city and its districts), as the guarantee figures read a region."""
    if not region:
        return None
    return region.rstrip("0") or region


def in_region(code: str | None, region: str | None) -> bool:
    prefix = region_prefix(region)
    return bool(prefix) and (code or "").startswith(prefix)


# -- the figures ---------------------------------------------------------------------------------------------

@dataclass
class _Sums:
    """Running sums of one month (or of the whole range) before the averages are taken."""

    published: int = 0
    stages: Counter = field(default_factory=Counter)
    reached_opening: int = 0
    bids_opened: int = 0
    by_method: Counter = field(default_factory=Counter)
    bids_failed: int = 0
    evaluations: int = 0
    remote_evaluations: int = 0
    members_host: int = 0
    members_other: int = 0
    awards: int = 0
    award_seconds: Decimal = ZERO
    openings_timed: int = 0
    opening_seconds: Decimal = ZERO
    bids: int = 0
    envelope_bytes: int = 0


@dataclass(frozen=True)
class MonthFigures:
    """The figures of one month (or ``label="total"`` for the whole range); averages None without data."""

    label: str
    tenders_published: int
    stages: dict[str, int]
    reached_opening: int
    bids_opened: int
    decrypted_by_bidder: int
    decrypted_by_custodians: int
    decrypted_both: int
    bids_failed: int
    evaluations: int
    remote_evaluations: int
    members_host_region: int
    members_other_regions: int
    awards: int
    avg_days_to_award: Decimal | None
    openings_timed: int
    avg_days_to_opening: Decimal | None
    bids: int
    avg_envelope_bytes: Decimal | None
    guarantees: Figures


@dataclass(frozen=True)
class Statistics:
    """The dashboard's data: a row per month, the totals, and committee members per expert home region."""

    query: StatsQuery
    months: list[MonthFigures]
    total: MonthFigures
    expert_regions: list[tuple[str, int, bool]]  # (region code, members seated, is a host region), most first


def _average(total: Decimal | int, count: int, unit: Decimal = Decimal(1), step: Decimal = ONE_TENTH
             ) -> Decimal | None:
    if not count:
        return None
    return (Decimal(total) / count / unit).quantize(step, rounding=ROUND_HALF_UP)


def _seconds(later: datetime, earlier: datetime) -> Decimal:
    delta = as_utc(later) - as_utc(earlier)
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / 1_000_000


def _month(at: datetime) -> str:
    local = beijing(at)
    return f"{local.year}-{local.month:02d}"


def _sum_guarantees(label: str, region: str | None, rows: Iterable[Figures]) -> Figures:
    rows = list(rows)
    return Figures(label, region, sum(r.guarantees_issued for r in rows),
                   sum((r.guaranteed_amount for r in rows), ZERO), sum((r.premiums_paid for r in rows), ZERO),
                   sum((r.premiums_saved for r in rows), ZERO), sum(r.waivers for r in rows),
                   sum((r.bond_waived for r in rows), ZERO))


def _finish(label: str, s: _Sums, guarantees: Figures) -> MonthFigures:
    return MonthFigures(
        label=label, tenders_published=s.published, stages={st.value: s.stages[st.value] for st in STAGES},
        reached_opening=s.reached_opening, bids_opened=s.bids_opened,
        decrypted_by_bidder=s.by_method[DecryptMethod.BIDDER.value],
        decrypted_by_custodians=s.by_method[DecryptMethod.CUSTODIANS.value],
        decrypted_both=s.by_method[DecryptMethod.BOTH.value], bids_failed=s.bids_failed,
        evaluations=s.evaluations, remote_evaluations=s.remote_evaluations, members_host_region=s.members_host,
        members_other_regions=s.members_other, awards=s.awards,
        avg_days_to_award=_average(s.award_seconds, s.awards, DAY_SECONDS),
        openings_timed=s.openings_timed, avg_days_to_opening=_average(s.opening_seconds, s.openings_timed,
                                                                      DAY_SECONDS),
        bids=s.bids, avg_envelope_bytes=_average(s.envelope_bytes, s.bids, step=Decimal(1)), guarantees=guarantees)


def _tenders(query: StatsQuery, *columns) -> Select:
    """``columns`` of the tenders published in the range (and region), joined from Tender."""
    stmt = select(Tender.id, *columns).where(Tender.published_at.is_not(None), Tender.published_at >= query.start_at,
                                             Tender.published_at < query.end_at)
    prefix = region_prefix(query.region)
    if prefix:
        stmt = stmt.where(Tender.region.startswith(prefix))
    return stmt


def collect(query: StatsQuery) -> Statistics:
    """Run every query of the dashboard for ``query`` and aggregate per month of publication."""
    labels = query.months
    sums: dict[str, _Sums] = {label: _Sums() for label in labels}
    total = _Sums()
    month_of: dict[int, str] = {}
    tender_region: dict[int, str] = {}
    published_at: dict[int, datetime] = {}

    def both(tender_id: int) -> tuple[_Sums, _Sums]:
        return sums[month_of[tender_id]], total

    for tender_id, status, published, region in db.session.execute(
            _tenders(query, Tender.status, Tender.published_at, Tender.region)):
        label = _month(published)
        if label not in sums:  # cannot happen for a range in whole Beijing days; kept for safety
            continue
        month_of[tender_id], tender_region[tender_id], published_at[tender_id] = label, region, published
        for s in both(tender_id):
            s.published += 1
            s.stages[TenderStatus(status).value] += 1

    for tender_id, started in db.session.execute(_tenders(query, OpeningSession.decryption_started_at)
                                                 .join(OpeningSession, OpeningSession.tender_id == Tender.id)
                                                 .where(OpeningSession.decryption_started_at.is_not(None))):
        if tender_id in month_of:
            for s in both(tender_id):
                s.reached_opening += 1
                s.openings_timed += 1
                s.opening_seconds += _seconds(started, published_at[tender_id])

    for tender_id, status, method in db.session.execute(
            _tenders(query, BidOpening.status, BidOpening.method).join(BidOpening, BidOpening.tender_id == Tender.id)):
        if tender_id not in month_of:
            continue
        for s in both(tender_id):
            if status == BidOpeningStatus.DECRYPTED:
                s.bids_opened += 1
                if method is not None:
                    s.by_method[DecryptMethod(method).value] += 1
            elif status == BidOpeningStatus.FAILED:
                s.bids_failed += 1

    remote: dict[int, bool] = {}
    host_region: dict[int, str | None] = {}
    for tender_id, is_remote, host in db.session.execute(
            _tenders(query, DrawRequest.is_remote, DrawRequest.host_region)
            .join(DrawRequest, DrawRequest.tender_id == Tender.id).where(DrawRequest.status != DrawStatus.CANCELLED)):
        remote[tender_id], host_region[tender_id] = bool(is_remote), host
    for (tender_id,) in db.session.execute(_tenders(query).join(Evaluation, Evaluation.tender_id == Tender.id)
                                           .distinct()):
        if tender_id in month_of:
            for s in both(tender_id):
                s.evaluations += 1
                s.remote_evaluations += int(remote.get(tender_id, False))

    regions: Counter = Counter()
    host_regions: set[str] = set()
    for tender_id, expert_region in db.session.execute(
            _tenders(query, Expert.region).join(CommitteeMember, CommitteeMember.tender_id == Tender.id)
            .join(Expert, Expert.id == CommitteeMember.expert_id).where(CommitteeMember.status.in_(SEATED))):
        if tender_id not in month_of:
            continue
        host = host_region.get(tender_id) or tender_region[tender_id]
        at_home = in_region(expert_region, host)
        regions[expert_region] += 1
        if at_home:
            host_regions.add(expert_region)
        for s in both(tender_id):
            if at_home:
                s.members_host += 1
            else:
                s.members_other += 1

    for tender_id, notified in db.session.execute(_tenders(query, Award.notified_at)
                                                  .join(Award, Award.tender_id == Tender.id)
                                                  .where(Award.notified_at.is_not(None))):
        if tender_id in month_of:
            for s in both(tender_id):
                s.awards += 1
                s.award_seconds += _seconds(notified, published_at[tender_id])

    for tender_id, size in db.session.execute(_tenders(query, Bid.envelope_size).join(Bid, Bid.tender_id == Tender.id)
                                              .where(Bid.is_current.is_(True))):
        if tender_id in month_of:
            for s in both(tender_id):
                s.bids += 1
                s.envelope_bytes += int(size)

    guarantees = {label: figures_for(parse_period(label), query.region) for label in labels}
    months = [_finish(label, sums[label], guarantees[label]) for label in labels]
    whole = _finish("total", total, _sum_guarantees("total", query.region, guarantees.values()))
    expert_regions = sorted(((code, n, code in host_regions) for code, n in regions.items()),
                            key=lambda row: (-row[1], row[0]))
    return Statistics(query, months, whole, expert_regions)


# -- CSV -----------------------------------------------------------------------------------------------------

CSV_COLUMNS: tuple[str, ...] = (
    "month", "region", "tenders_published", *(f"status_{s.value}" for s in STAGES), "reached_opening",
    "bids_opened", "decrypted_by_bidder", "decrypted_by_custodians", "decrypted_double_envelope", "bids_failed",
    "evaluations", "remote_evaluations", "members_host_region", "members_other_regions", "awards",
    "avg_days_to_award", "openings_timed", "avg_days_to_opening", "bids", "avg_envelope_bytes",
    "guarantees_issued", "guaranteed_amount", "premiums_paid", "premiums_saved", "waivers", "bond_waived")


def csv_row(row: MonthFigures, region: str | None) -> list[str | int]:
    """The CSV cells of one month, in :data:`CSV_COLUMNS` order (an average without data is empty)."""
    g = row.guarantees

    def text(value: Decimal | None) -> str:
        return "" if value is None else str(value)

    return [row.label, region or "", row.tenders_published, *(row.stages[s.value] for s in STAGES),
            row.reached_opening, row.bids_opened, row.decrypted_by_bidder, row.decrypted_by_custodians,
            row.decrypted_both, row.bids_failed, row.evaluations, row.remote_evaluations, row.members_host_region,
            row.members_other_regions, row.awards, text(row.avg_days_to_award), row.openings_timed,
            text(row.avg_days_to_opening), row.bids, text(row.avg_envelope_bytes), g.guarantees_issued,
            str(g.guaranteed_amount), str(g.premiums_paid), str(g.premiums_saved), g.waivers, str(g.bond_waived)]


def write_csv(stats: Statistics, out: TextIO) -> None:
    """One header row, then one row per month (no total row: sums of a column are the reader's to take)."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in stats.months:
        writer.writerow(csv_row(row, stats.query.region))
