"""The e-guarantee figures page (电子保函统计): a table, a server-drawn SVG chart and the same numbers as CSV.

Per month, quarter or year (Beijing time), optionally for a region code: guarantees issued, the amount
guaranteed (working capital a cash bond would have locked), premiums paid, premiums saved against the
reference rate frozen on each order (e.g. 1.5‰), and waivers used.

Access: public. Every number here is an aggregate over all bidders and issuers of a period, with no
organisation named — the same figures the public API gives (``/api/guarantees/figures``) and a
trading centre publishes in its reports. Nothing finer (per bidder, per issuer, per tender) is shown,
so supervisors, administrators and centre staff see exactly what the public sees.

The chart is inline SVG built here and rendered by the template: no JavaScript, no CDN. Geometry uses
floats for pixel positions only; every amount shown as text is the Decimal from the figures.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from flask import Response, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from core.clock import beijing, now
from core.errors import ValidationFailed
from guarantees import Figures, figures_for, parse_period, policy_in_force, write_csv
from guarantees.rates import money_text
from guarantees.views_support import bp, form_error

DEFAULT_COUNT = {"month": 12, "quarter": 8, "year": 5}
MAX_COUNT = 36
REGION_RE = re.compile(r"^\d{2,12}$")
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Query:
    kind: str
    until: str
    count: int
    region: str | None
    labels: list[str]


def current_label(kind: str, at: datetime) -> str:
    """The label of the period of ``kind`` containing ``at`` (Beijing time)."""
    local = beijing(at)
    if kind == "month":
        return f"{local.year}-{local.month:02d}"
    if kind == "quarter":
        return f"{local.year}-Q{(local.month - 1) // 3 + 1}"
    return str(local.year)


def labels_until(kind: str, until: str, count: int) -> list[str]:
    """``count`` consecutive period labels of ``kind`` ending with ``until``, oldest first."""
    period = parse_period(until)
    year = int(period.label[:4])
    if kind == "month":
        index = year * 12 + int(period.label[5:7]) - 1
        return [f"{i // 12}-{i % 12 + 1:02d}" for i in range(index - count + 1, index + 1)]
    if kind == "quarter":
        index = year * 4 + int(period.label[-1]) - 1
        return [f"{i // 4}-Q{i % 4 + 1}" for i in range(index - count + 1, index + 1)]
    return [str(y) for y in range(year - count + 1, year + 1)]


def parse_query(args) -> Query:
    """Read ``period`` (month|quarter|year), ``until``, ``count``, ``region``; ValidationFailed names the field."""
    kind = (args.get("period") or "month").strip()
    if kind not in DEFAULT_COUNT:
        raise ValidationFailed(fields={"period": [_l("Choose month, quarter or year.")]})
    until = (args.get("until") or "").strip() or current_label(kind, now())
    examples = {"month": "2025-03", "quarter": "2025-Q1", "year": "2025"}
    try:
        parsed = parse_period(until)
    except ValueError:
        parsed = None
    if parsed is None or parsed.kind != kind:
        raise ValidationFailed(fields={"until": [_l("Give the last period as %(example)s.",
                                                    example=examples[kind])]})
    raw_count = (args.get("count") or "").strip()
    count = DEFAULT_COUNT[kind]
    if raw_count:
        if not raw_count.isdigit() or not 1 <= int(raw_count) <= MAX_COUNT:
            raise ValidationFailed(fields={"count": [_l("Show 1 to %(n)s periods.", n=MAX_COUNT)]})
        count = int(raw_count)
    region = (args.get("region") or "").strip() or None
    if region is not None and not REGION_RE.match(region):
        raise ValidationFailed(fields={"region": [_l("Give an administrative division code such as 370200, "
                                                     "or leave it empty for every region.")]})
    return Query(kind, parsed.label, count, region, labels_until(kind, parsed.label, count))


def collect_rows(query: Query) -> list[Figures]:
    return [figures_for(parse_period(label), query.region) for label in query.labels]


def totals(rows: list[Figures]) -> dict[str, object]:
    return {"guarantees_issued": sum(r.guarantees_issued for r in rows),
            "guaranteed_amount": sum((r.guaranteed_amount for r in rows), ZERO),
            "premiums_paid": sum((r.premiums_paid for r in rows), ZERO),
            "premiums_saved": sum((r.premiums_saved for r in rows), ZERO),
            "waivers": sum(r.waivers for r in rows), "bond_waived": sum((r.bond_waived for r in rows), ZERO)}


# -- the chart -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass
class Panel:
    title: str
    top: float
    height: float
    ticks: list[tuple[float, str]] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)


@dataclass
class Chart:
    width: int
    height: int
    left: int
    right: int
    panels: list[Panel]
    labels: list[tuple[float, str]]
    label_y: float
    rotate: bool
    summary: str


def nice_ceiling(value: Decimal) -> Decimal:
    """The smallest 1, 2, 2.5 or 5 × 10^k at least ``value`` (1 for nothing), for a readable axis."""
    if value <= 0:
        return Decimal(1)
    exponent = value.adjusted()
    for step in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10)):
        candidate = step.scaleb(exponent)
        if candidate >= value:
            return candidate
    return Decimal(10).scaleb(exponent)


def _number(value: Decimal) -> str:
    return format(value.normalize(), ",f")


def _ticks(top: float, height: float, ceiling: Decimal, unit: Decimal) -> list[tuple[float, str]]:
    return [(top + height - height * i / 4, _number(ceiling * i / 4 / unit)) for i in range(5)]


def build_chart(rows: list[Figures], width: int = 960) -> Chart:
    """Two panels over the same periods: amount guaranteed (万元), and premiums paid and saved (CNY)."""
    left, right, panel_height = 90, 20, 150
    plot = width - left - right
    n = max(len(rows), 1)
    group = plot / n
    rotate = n > 14
    amount_panel = Panel(_("Amount guaranteed (10,000 CNY, 万元)"), 64, panel_height)
    premium_panel = Panel(_("Premiums paid and premiums saved (CNY)"), 64 + panel_height + 60, panel_height)
    amount_max = nice_ceiling(max((r.guaranteed_amount for r in rows), default=ZERO))
    premium_max = nice_ceiling(max((max(r.premiums_paid, r.premiums_saved) for r in rows), default=ZERO))
    amount_panel.ticks = _ticks(amount_panel.top, panel_height, amount_max, Decimal(10000))
    premium_panel.ticks = _ticks(premium_panel.top, panel_height, premium_max, Decimal(1))
    labels = []
    for i, row in enumerate(rows):
        x0 = left + group * i
        labels.append((x0 + group / 2, row.period))
        h = float(row.guaranteed_amount / amount_max) * panel_height
        amount_panel.bars.append(Bar(x0 + group * 0.25, amount_panel.top + panel_height - h, group * 0.5, h,
                                     "bar-amount", _("%(period)s: %(amount)s CNY guaranteed by %(n)s letters",
                                                     period=row.period, amount=money_text(row.guaranteed_amount),
                                                     n=row.guarantees_issued)))
        for j, (value, css, text) in enumerate((
                (row.premiums_paid, "bar-paid", _("%(period)s: %(amount)s CNY premiums paid",
                                                  period=row.period, amount=money_text(row.premiums_paid))),
                (row.premiums_saved, "bar-saved", _("%(period)s: %(amount)s CNY premiums saved",
                                                    period=row.period, amount=money_text(row.premiums_saved))))):
            h = float(value / premium_max) * panel_height
            premium_panel.bars.append(Bar(x0 + group * (0.15 + 0.36 * j), premium_panel.top + panel_height - h,
                                          group * 0.34, h, css, text))
    total = totals(rows)
    summary = _("%(n)s letters guaranteed %(amount)s CNY; premiums paid %(paid)s CNY, saved %(saved)s CNY.",
                n=total["guarantees_issued"], amount=money_text(total["guaranteed_amount"]),
                paid=money_text(total["premiums_paid"]), saved=money_text(total["premiums_saved"]))
    label_y = premium_panel.top + panel_height + 18
    return Chart(width, int(label_y + (60 if rotate else 20)), left, right, [amount_panel, premium_panel], labels,
                 label_y, rotate, summary)


# -- the pages -------------------------------------------------------------------------------------

@bp.route("/guarantees/figures")
def figures():
    """Figures per period: table and chart, with a CSV download of the same numbers (public)."""
    try:
        query = parse_query(request.args)
    except ValidationFailed as exc:
        message, fields = form_error(exc)
        return render_template("guarantees/figures.html", query=None, rows=[], total=None, chart=None,
                               policy=policy_in_force(), error=message, errors=fields,
                               values=request.args.to_dict()), exc.status
    rows = collect_rows(query)
    return render_template("guarantees/figures.html", query=query, rows=rows, total=totals(rows),
                           chart=build_chart(rows), policy=policy_in_force(), error=None, errors={},
                           values={"period": query.kind, "until": query.until, "count": str(query.count),
                                   "region": query.region or ""})


@bp.route("/guarantees/figures.csv")
def figures_csv():
    """The figures table as CSV (one row per period, amounts in CNY with 2 decimals)."""
    query = parse_query(request.args)  # a refusal goes to the error page, saying which field to fix
    out = io.StringIO()
    write_csv(collect_rows(query), out)
    name = f"guarantee-figures-{query.kind}-{query.until}{'-' + query.region if query.region else ''}.csv"
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
