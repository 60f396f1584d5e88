"""Statutory time and price rules of a tender (DOMAIN.md §1.1, §1.5) as versioned, pure rule sets.

A :class:`RuleSet` holds the limits of one version of the law (e.g. ``cn-2019.1``: 条例 as revised in
2019). The version in force is fixed on the tender when it is published (``Tender.rules_version``), and
every later check of that tender (amendments, objections) uses that version, never today's. Regions may
configure overrides (a city requiring 25 days instead of 20), but only stricter ones: a looser override is
refused when the rule book is loaded.

Each check returns :class:`Violation` objects: a machine code, the field to fix and a translatable message
naming the rule and the date (Beijing time) or amount that would satisfy it. Nothing here touches the
database or the request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask_babel import lazy_gettext as _l

from core.clock import beijing

CENT = Decimal("0.01")


@dataclass(frozen=True)
class RuleSet:
    """The limits of one version of the tendering rules."""

    version: str
    documents_min_days: int = 5                  # 招标文件 available ≥ 5 days (条例 §16)
    bid_period_min_days: int = 20                # issued → bid deadline (招标投标法 §24; GP 等标期, 政府采购法 §35)
    amendment_min_days: int = 15                 # amendment affecting bids ≥ 15 days before deadline (条例 §21)
    objection_min_days: int = 10                 # 异议 on 招标文件 ≥ 10 days before deadline (条例 §22)
    objection_answer_days: int = 3               # 招标人 answers within 3 days (条例 §22)
    bid_validity_min_days: int = 30              # sane range of 投标有效期 [P]
    bid_validity_max_days: int = 180
    guarantee_max_rate: Decimal = Decimal("0.02")           # bond ≤ 2 % of estimated price (条例 §26)
    guarantee_cap_works: Decimal = Decimal("800000.00")     # works absolute cap (七部委30号令 §37) [V]


# Direction in which each limit becomes stricter; "fixed" limits cannot be overridden at all
# (a later objection deadline would take a statutory right away from bidders, an earlier one would
# leave the tenderer no time to answer before the deadline).
AT_LEAST = frozenset({"documents_min_days", "bid_period_min_days", "amendment_min_days", "bid_validity_min_days"})
AT_MOST = frozenset({"objection_answer_days", "bid_validity_max_days", "guarantee_max_rate", "guarantee_cap_works"})
FIXED = frozenset({"objection_min_days"})

CN_2019_1 = RuleSet(version="cn-2019.1")


class RuleConfigError(ValueError):
    """A rule book configuration that would loosen a statutory limit, or is malformed."""


class RuleBook:
    """The registry of rule-set versions, with regional overrides that can only tighten them."""

    def __init__(self, rulesets: Iterable[RuleSet] = (CN_2019_1,), current: str = CN_2019_1.version,
                 region_overrides: Mapping[str, Mapping[str, Any]] | None = None):
        self._rulesets = {rs.version: rs for rs in rulesets}
        if current not in self._rulesets:
            raise RuleConfigError(f"current rules version {current!r} is not registered")
        self.current_version = current
        self._overrides: dict[str, dict[str, Any]] = {}
        for region, values in (region_overrides or {}).items():
            self._overrides[str(region)] = self._validated(str(region), values)

    @property
    def versions(self) -> list[str]:
        return sorted(self._rulesets)

    def _validated(self, region: str, values: Mapping[str, Any]) -> dict[str, Any]:
        known = {f.name for f in fields(RuleSet)} - {"version"}
        clean: dict[str, Any] = {}
        for name, raw in values.items():
            if name not in known:
                raise RuleConfigError(f"region {region}: unknown rule {name!r}")
            value = Decimal(str(raw)) if name.startswith("guarantee_") else int(raw)
            for base in self._rulesets.values():
                limit = getattr(base, name)
                if name in FIXED and value != limit:
                    raise RuleConfigError(f"region {region}: {name} is fixed by law at {limit}")
                if name in AT_LEAST and value < limit:
                    raise RuleConfigError(f"region {region}: {name}={value} is looser than the statutory "
                                          f"minimum {limit} of {base.version}; overrides may only be stricter")
                if name in AT_MOST and value > limit:
                    raise RuleConfigError(f"region {region}: {name}={value} is looser than the statutory "
                                          f"maximum {limit} of {base.version}; overrides may only be stricter")
            clean[name] = value
        return clean

    def get(self, version: str | None = None, region: str | None = None) -> RuleSet:
        """Return the effective rules of ``version`` (default: current) for ``region``.

        Every override whose region covers ``region`` applies (a province's and a city's: 370000 and
        370200 both cover the district 370211);
        for each limit the strictest value wins.
        """
        version = version or self.current_version
        try:
            rules = self._rulesets[version]
        except KeyError:
            raise RuleConfigError(f"rules version {version!r} is not registered") from None
        changes: dict[str, Any] = {}
        for code, values in self._overrides.items():
            # administrative division codes: 370000 province, 370200 city, 370211 district
            if region and region.startswith(code.rstrip("0") or code):
                for name, value in values.items():
                    current = changes.get(name, getattr(rules, name))
                    changes[name] = max(current, value) if name in AT_LEAST else min(current, value)
        return replace(rules, **changes) if changes else rules


@dataclass(frozen=True)
class Violation:
    """One broken rule: a code, the field to fix and a message (rendered lazily in the reader's language)."""

    code: str
    field: str
    message: Any
    params: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return str(self.message) % dict(self.params)


@dataclass(frozen=True)
class LotTerms:
    estimated_price: Decimal | None
    ceiling_price: Decimal | None = None
    bond_amount: Decimal | None = None


@dataclass(frozen=True)
class TenderTerms:
    """What the rules look at in a tender, independent of how it is stored."""

    regime: str
    category: str
    is_mandatory: bool
    estimated_price: Decimal | None
    ceiling_price: Decimal | None = None
    documents_from_at: datetime | None = None
    documents_until_at: datetime | None = None
    question_deadline_at: datetime | None = None
    bid_deadline_at: datetime | None = None
    opening_at: datetime | None = None
    bid_validity_days: int | None = None
    guarantee_amount: Decimal | None = None
    lots: Sequence[LotTerms] = ()
    document_count: int = 0


def when(value: datetime) -> str:
    """A date as shown in messages: Beijing time with its offset, to the minute."""
    return beijing(value).strftime("%Y-%m-%d %H:%M (UTC+08:00)")


def money(value: Decimal) -> str:
    return f"{value.quantize(CENT, rounding=ROUND_HALF_UP):,}"


def _days(n: int) -> timedelta:
    return timedelta(days=n)


def needs_bid_period(terms: TenderTerms) -> bool:
    """The 20-day minimum binds mandatory tenders (依法必须招标) and every GP tender (等标期)."""
    return terms.is_mandatory or terms.regime == "gp"


def documents_issued_at(terms: TenderTerms, published_at: datetime) -> datetime:
    """Documents are issued when they become available, never before publication."""
    if terms.documents_from_at is None:
        return published_at
    return max(terms.documents_from_at, published_at)


def check_required(terms: TenderTerms) -> list[Violation]:
    """Everything publication needs must be filled in (documents are available from publication if not said)."""
    missing = [(name, label) for name, label in (
        ("documents_until_at", _l("the last day the documents are available")),
        ("question_deadline_at", _l("the question deadline")),
        ("bid_deadline_at", _l("the bid deadline")),
    ) if getattr(terms, name) is None]
    out = [Violation("required", name, _l("Enter %(what)s."), {"what": label}) for name, label in missing]
    if not terms.lots:
        out.append(Violation("lots_required", "lots", _l("Add at least one lot (标段) before publishing.")))
    if terms.document_count < 1:
        out.append(Violation("documents_required", "documents",
                             _l("Upload the tender documents (招标文件) before publishing.")))
    return out


def check_periods(rules: RuleSet, terms: TenderTerms, issued_at: datetime) -> list[Violation]:
    """Relations between the periods: documents window, bid period, question deadline, opening."""
    out: list[Violation] = []
    deadline, until = terms.bid_deadline_at, terms.documents_until_at
    if until is not None:
        earliest = issued_at + _days(rules.documents_min_days)
        if until < earliest:
            out.append(Violation("documents_period_too_short", "documents_until_at", _l(
                "The tender documents must be available for at least %(days)s days (until %(date)s or later)."),
                {"days": rules.documents_min_days, "date": when(earliest)}))
        if deadline is not None and until > deadline:
            out.append(Violation("documents_after_deadline", "documents_until_at", _l(
                "The documents cannot be available after the bid deadline (until %(date)s at the latest)."),
                {"date": when(deadline)}))
    if deadline is not None and needs_bid_period(terms):
        earliest = issued_at + _days(rules.bid_period_min_days)
        if deadline < earliest:
            out.append(Violation("bid_period_too_short", "bid_deadline_at", _l(
                "The bid deadline must be at least %(days)s days after the documents are issued "
                "(on or after %(date)s)."), {"days": rules.bid_period_min_days, "date": when(earliest)}))
    if deadline is not None and terms.question_deadline_at is not None and terms.question_deadline_at >= deadline:
        out.append(Violation("question_deadline_after_bid_deadline", "question_deadline_at", _l(
            "The question deadline must be before the bid deadline (before %(date)s)."), {"date": when(deadline)}))
    if terms.opening_at is not None and deadline is not None and terms.opening_at != deadline:
        out.append(Violation("opening_not_at_deadline", "opening_at", _l(
            "The opening must take place at the bid deadline (%(date)s)."), {"date": when(deadline)}))
    return out


FUTURE_FIELDS = ("documents_until_at", "question_deadline_at", "bid_deadline_at")


def check_future(terms: TenderTerms, at: datetime, names: Iterable[str] = FUTURE_FIELDS) -> list[Violation]:
    """The named deadlines must still lie ahead of ``at``."""
    return [Violation("in_the_past", name, _l("This date has already passed; choose one after %(date)s."),
                      {"date": when(at)})
            for name in names if getattr(terms, name) is not None and getattr(terms, name) <= at]


def check_prices(terms: TenderTerms) -> list[Violation]:
    """Estimated price > 0, ceiling price (最高投标限价) ≥ 0, every lot's prices positive."""
    out: list[Violation] = []
    if terms.estimated_price is None or terms.estimated_price <= 0:
        out.append(Violation("estimated_price_not_positive", "estimated_price",
                             _l("The estimated price must be greater than zero.")))
    if terms.ceiling_price is not None and terms.ceiling_price < 0:
        out.append(Violation("ceiling_price_negative", "ceiling_price", _l("The ceiling price cannot be negative.")))
    for i, lot in enumerate(terms.lots):
        if lot.estimated_price is None or lot.estimated_price <= 0:
            out.append(Violation("lot_price_not_positive", f"lots.{i}.estimated_price",
                                 _l("The estimated price of lot %(number)s must be greater than zero."),
                                 {"number": i + 1}))
        if lot.ceiling_price is not None and lot.ceiling_price <= 0:
            out.append(Violation("lot_price_not_positive", f"lots.{i}.ceiling_price",
                                 _l("The ceiling price of lot %(number)s must be greater than zero."),
                                 {"number": i + 1}))
    return out


def max_guarantee(rules: RuleSet, estimated_price: Decimal, category: str) -> Decimal:
    """The largest bid bond allowed: 2 % of the estimated price, capped for works."""
    limit = (estimated_price * rules.guarantee_max_rate).quantize(CENT, rounding=ROUND_HALF_UP)
    return min(limit, rules.guarantee_cap_works) if category == "works" else limit


def _check_bond(rules: RuleSet, amount: Decimal | None, estimate: Decimal | None, category: str,
                name: str) -> list[Violation]:
    if amount is None:
        return []
    if amount < 0:
        return [Violation("guarantee_negative", name, _l("The bid bond cannot be negative."))]
    if estimate is None or estimate <= 0:
        return []
    limit = max_guarantee(rules, estimate, category)
    if amount <= limit:
        return []
    if category == "works" and limit == rules.guarantee_cap_works:
        return [Violation("guarantee_above_cap", name, _l(
            "For works the bid bond may not exceed %(amount)s CNY; lower it to %(amount)s or less."),
            {"amount": money(rules.guarantee_cap_works)})]
    return [Violation("guarantee_above_rate", name, _l(
        "The bid bond may be at most %(rate)s%% of the estimated price; lower it to %(amount)s CNY or less."),
        {"rate": (rules.guarantee_max_rate * 100).normalize(), "amount": money(limit)})]


def check_guarantees(rules: RuleSet, terms: TenderTerms) -> list[Violation]:
    """Bid bonds (投标保证金) ≤ 2 % of the estimated price (条例 §26), and the works cap."""
    out = _check_bond(rules, terms.guarantee_amount, terms.estimated_price, terms.category,
                      "guarantee_policy.amount")
    for i, lot in enumerate(terms.lots):
        out += _check_bond(rules, lot.bond_amount, lot.estimated_price, terms.category, f"lots.{i}.bond_amount")
    return out


def check_bid_validity(rules: RuleSet, terms: TenderTerms) -> list[Violation]:
    days = terms.bid_validity_days
    if days is not None and rules.bid_validity_min_days <= days <= rules.bid_validity_max_days:
        return []
    return [Violation("bid_validity_out_of_range", "bid_validity_days", _l(
        "The bid validity must be between %(min)s and %(max)s days."),
        {"min": rules.bid_validity_min_days, "max": rules.bid_validity_max_days})]


def check_publication(rules: RuleSet, terms: TenderTerms, at: datetime) -> list[Violation]:
    """Every rule a tender must meet to be published at ``at``."""
    return (check_required(terms) + check_future(terms, at)
            + check_periods(rules, terms, documents_issued_at(terms, at))
            + check_prices(terms) + check_guarantees(rules, terms) + check_bid_validity(rules, terms))


def check_amendment(rules: RuleSet, *, at: datetime, current_deadline: datetime,
                    new_deadline: datetime | None, affects_bids: bool) -> list[Violation]:
    """An amendment affecting bids needs ≥ 15 days before the deadline, else the deadline moves (条例 §21)."""
    if not affects_bids:
        return []
    earliest = at + _days(rules.amendment_min_days)
    if (new_deadline or current_deadline) >= earliest:
        return []
    if new_deadline is None:
        return [Violation("postponement_required", "bid_deadline_at", _l(
            "This amendment affects bid preparation and fewer than %(days)s days remain before the bid deadline; "
            "postpone the bid deadline to %(date)s or later."),
            {"days": rules.amendment_min_days, "date": when(earliest)})]
    return [Violation("postponement_too_short", "bid_deadline_at", _l(
        "After an amendment that affects bids, at least %(days)s days must remain before the bid deadline "
        "(on or after %(date)s)."), {"days": rules.amendment_min_days, "date": when(earliest)})]


def check_objection(rules: RuleSet, *, at: datetime, bid_deadline: datetime) -> list[Violation]:
    """An objection (异议) to the tender documents comes ≥ 10 days before the bid deadline (条例 §22)."""
    latest = bid_deadline - _days(rules.objection_min_days)
    if at <= latest:
        return []
    return [Violation("objection_too_late", "text", _l(
        "Objections to the tender documents must be raised at least %(days)s days before the bid deadline "
        "(by %(date)s)."), {"days": rules.objection_min_days, "date": when(latest)})]


def objection_answer_due(rules: RuleSet, raised_at: datetime) -> datetime:
    """When the tenderer's answer to an objection is due (3 days, 条例 §22)."""
    return raised_at + _days(rules.objection_answer_days)


def check_question(*, at: datetime, question_deadline: datetime | None) -> list[Violation]:
    """Questions close at the question deadline."""
    if question_deadline is not None and at < question_deadline:
        return []
    return [Violation("question_deadline_passed", "text", _l(
        "Questions closed at %(date)s; no more questions can be asked."),
        {"date": when(question_deadline) if question_deadline else "-"})]
