"""The statistics dashboard (统计) for supervisors and platform administrators (blueprint ``supervision_stats``).

``/supervision/statistics`` shows every figure of :mod:`supervision.stats` as an inline SVG chart (with a
``<title>``, axis labels and a ``<title>`` per bar) and as a table; ``/supervision/statistics.csv`` gives one
row per month with every numeric column, UTF-8 with a byte-order mark so that spreadsheet programs read it
as UTF-8. Filters: ``from``/``to`` (publication days, YYYY-MM-DD) and ``region``; by default the last 12 months.

The charts are drawn here (no JavaScript, no CDN); floats are used for pixel positions only, every number
shown as text is the Decimal or int of the figures.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flask import Blueprint, Flask, Response, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from bidding.view_support import STATUS_LABELS
from core.errors import Forbidden, ValidationFailed
from core.extensions import login_manager
from core.identity.models import Role
from guarantees.rates import money_text
from guarantees.views_figures import nice_ceiling
from supervision import stats
from supervision.stats import STAGES, MonthFigures, Statistics

bp = Blueprint("supervision_stats", __name__)

READERS = (Role.SUPERVISOR, Role.ADMIN)
STAGE_COLOURS = {"published": "#2e90fa", "opening": "#7a5af8", "evaluation": "#ee46bc", "publicity": "#f79009",
                 "awarded": "#12b76a", "failed": "#f04438", "cancelled": "#98a2b3"}


@bp.before_request
def _readers_only():
    if not current_user.is_authenticated:
        return login_manager.unauthorized()  # the login page for people, 401 for API and token clients
    if not any(current_user.has_role(role) for role in READERS):
        raise Forbidden(_l("Only supervisors and platform administrators may see the statistics."),
                        code="statistics_readers_only")
    return None


# -- a small generic SVG chart -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Series:
    """One series of a chart: a key (for CSS and tests), its display name, colour and one value per label."""

    key: str
    name: str
    colour: str
    values: Sequence[Decimal | int | None]


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    colour: str
    series: str
    title: str


@dataclass(frozen=True)
class Polyline:
    series: str
    colour: str
    points: str
    dots: list[tuple[float, float, str]]


@dataclass
class Chart:
    """Geometry of a bar (stacked or grouped) or line chart over the same x labels, ready for the template."""

    key: str
    title: str
    y_label: str
    x_label: str
    width: int
    height: int
    left: int
    top: int
    plot_width: float
    plot_height: float
    legend: list[tuple[str, str]]
    ticks: list[tuple[float, str]] = field(default_factory=list)
    labels: list[tuple[float, str]] = field(default_factory=list)
    rects: list[Rect] = field(default_factory=list)
    lines: list[Polyline] = field(default_factory=list)
    summary: str = ""

    @property
    def bottom(self) -> float:
        return self.top + self.plot_height

    @property
    def right(self) -> float:
        return self.left + self.plot_width


def number_text(value: Decimal | int | None) -> str:
    """A figure as text with thousands separators, exact ("–" for no data)."""
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,f}"


def build_chart(key: str, title: str, y_label: str, labels: Sequence[str], series: Sequence[Series], *,
                kind: str = "grouped", x_label: str = "", width: int = 960, plot_height: int = 200,
                formatter: Callable[[Decimal | int | None], str] = number_text) -> Chart:
    """Lay out ``series`` over ``labels`` as ``kind`` (``stacked``, ``grouped`` or ``line``) bars or lines."""
    left, top, right = 80, 40, 20
    plot_width = width - left - right
    rotate = len(labels) > 14
    height = int(top + plot_height + (78 if rotate else 52))
    chart = Chart(key, title, y_label, x_label, width, height, left, top, plot_width, plot_height,
                  legend=[(s.name, s.colour) for s in series])
    n = max(len(labels), 1)
    group = plot_width / n

    def value(v: Decimal | int | None) -> Decimal:
        return Decimal(v) if v is not None else Decimal(0)

    if kind == "stacked":
        peak = max((sum((value(s.values[i]) for s in series), Decimal(0)) for i in range(len(labels))),
                   default=Decimal(0))
    else:
        peak = max((value(v) for s in series for v in s.values), default=Decimal(0))
    ceiling = nice_ceiling(peak)
    chart.ticks = [(top + plot_height - plot_height * i / 4, f"{(ceiling * i / 4).normalize():,f}") for i in range(5)]

    def y_of(v: Decimal) -> float:
        return top + plot_height - float(v / ceiling) * plot_height

    for i, label in enumerate(labels):
        x0 = left + group * i
        chart.labels.append((x0 + group / 2, label))
        if kind == "stacked":
            base = Decimal(0)
            for s in series:
                v = value(s.values[i])
                if v > 0:
                    chart.rects.append(Rect(x0 + group * 0.2, y_of(base + v), group * 0.6, y_of(base) - y_of(base + v),
                                            s.colour, s.key, f"{label} · {s.name}: {formatter(s.values[i])}"))
                base += v
        elif kind == "grouped":
            inner = group * 0.8 / max(len(series), 1)
            for j, s in enumerate(series):
                v = value(s.values[i])
                chart.rects.append(Rect(x0 + group * 0.1 + inner * j, y_of(v), inner * 0.9, y_of(Decimal(0)) - y_of(v),
                                        s.colour, s.key, f"{label} · {s.name}: {formatter(s.values[i])}"))
    if kind == "line":
        for s in series:
            dots = [(left + group * (i + 0.5), y_of(Decimal(v)), f"{labels[i]} · {s.name}: {formatter(v)}")
                    for i, v in enumerate(s.values) if v is not None]
            chart.lines.append(Polyline(s.key, s.colour, " ".join(f"{x:.1f},{y:.1f}" for x, y, _t in dots), dots))
    return chart


# -- the dashboard's charts ----------------------------------------------------------------------------------

def kib(value: Decimal | int | None) -> Decimal | None:
    """Bytes as KiB with one decimal (None stays None)."""
    return None if value is None else (Decimal(value) / 1024).quantize(Decimal("0.1"))


def charts(data: Statistics) -> list[Chart]:
    """Every chart of the dashboard, in page order."""
    rows: list[MonthFigures] = data.months
    labels = [r.label for r in rows]
    month = _("Month of publication")

    def col(get: Callable[[MonthFigures], Any]) -> list[Any]:
        return [get(r) for r in rows]

    tenders = build_chart("tenders", _("Tenders by stage and month of publication"), _("Tenders"), labels,
                          [Series(s.value, str(STATUS_LABELS[s]), STAGE_COLOURS[s.value],
                                  col(lambda r, v=s.value: r.stages[v])) for s in STAGES],
                          kind="stacked", x_label=month)
    tenders.summary = _("%(n)s tenders published in the range.", n=data.total.tenders_published)
    openings = build_chart("openings", _("Bids at online openings"), _("Bids"), labels, [
        Series("bidder", _("Decrypted by the bidder"), "#2e90fa", col(lambda r: r.decrypted_by_bidder)),
        Series("custodians", _("Decrypted by the key custodians"), "#7a5af8", col(lambda r: r.decrypted_by_custodians)),
        Series("both", _("Double envelope (bidder and custodians)"), "#12b76a", col(lambda r: r.decrypted_both)),
        Series("failed", _("Decryption failed"), "#f04438", col(lambda r: r.bids_failed))],
        kind="stacked", x_label=month)
    openings.summary = _("%(tenders)s openings: %(opened)s bids decrypted, %(failed)s failed.",
                         tenders=data.total.reached_opening, opened=data.total.bids_opened,
                         failed=data.total.bids_failed)
    evaluations = build_chart("evaluations", _("Evaluations and committee members' home regions"),
                              _("Evaluations / members"), labels, [
        Series("evaluations", _("Evaluations"), "#98a2b3", col(lambda r: r.evaluations)),
        Series("remote", _("Remote evaluations"), "#2e90fa", col(lambda r: r.remote_evaluations)),
        Series("host", _("Members from the host region"), "#f79009", col(lambda r: r.members_host_region)),
        Series("other", _("Members from other regions"), "#12b76a", col(lambda r: r.members_other_regions))],
        x_label=month)
    evaluations.summary = _("%(remote)s of %(n)s evaluations remote; %(other)s of %(members)s members from other "
                            "regions.", remote=data.total.remote_evaluations, n=data.total.evaluations,
                            other=data.total.members_other_regions,
                            members=data.total.members_host_region + data.total.members_other_regions)
    days = build_chart("days", _("Average days from the notice"), _("Days"), labels, [
        Series("opening", _("To the opening"), "#7a5af8", col(lambda r: r.avg_days_to_opening)),
        Series("award", _("To the award notice"), "#12b76a", col(lambda r: r.avg_days_to_award))],
        kind="line", x_label=month)
    days.summary = _("On average %(opening)s days to the opening and %(award)s days to the award notice.",
                     opening=number_text(data.total.avg_days_to_opening),
                     award=number_text(data.total.avg_days_to_award))
    materials = build_chart("materials", _("Average sealed envelope size per bid"), _("KiB"), labels, [
        Series("envelope", _("Average envelope size (KiB)"), "#2e90fa", col(lambda r: kib(r.avg_envelope_bytes)))],
        x_label=month)
    materials.summary = _("%(n)s bids, %(size)s KiB per envelope on average.", n=data.total.bids,
                          size=number_text(kib(data.total.avg_envelope_bytes)))
    guarantees = build_chart("guarantees", _("E-guarantee premiums paid and saved (by month of issue)"), _("CNY"),
                             labels, [
        Series("paid", _("Premiums paid"), "#f79009", col(lambda r: r.guarantees.premiums_paid)),
        Series("saved", _("Premiums saved vs the reference rate"), "#12b76a",
               col(lambda r: r.guarantees.premiums_saved))],
        x_label=_("Month of issue"), formatter=lambda v: money_text(Decimal(v or 0)))
    g = data.total.guarantees
    guarantees.summary = _("%(n)s letters guaranteed %(amount)s CNY; premiums paid %(paid)s CNY, saved %(saved)s "
                           "CNY.", n=g.guarantees_issued, amount=money_text(g.guaranteed_amount),
                           paid=money_text(g.premiums_paid), saved=money_text(g.premiums_saved))
    return [tenders, openings, evaluations, days, materials, guarantees]


# -- the pages -----------------------------------------------------------------------------------------------

def _values(query: stats.StatsQuery) -> dict[str, str]:
    return {"from": query.start.isoformat(), "to": query.end.isoformat(), "region": query.region or ""}


@bp.route("/supervision/statistics")
def statistics():
    """The dashboard: filters, charts and tables (supervisors and administrators)."""
    try:
        query = stats.parse_query(request.args)
    except ValidationFailed as exc:
        fields = {k: [str(m) for m in v] for k, v in exc.fields.items()}
        return render_template("supervision/statistics.html", data=None, charts={}, error=str(exc.message),
                               errors=fields, values=request.args.to_dict(), stages=STAGES,
                               status_labels=STATUS_LABELS, number=number_text, cny=money_text, kib=kib), exc.status
    data = stats.collect(query)
    return render_template("supervision/statistics.html", data=data, charts={c.key: c for c in charts(data)},
                           error=None, errors={}, values=_values(query), stages=STAGES, status_labels=STATUS_LABELS,
                           number=number_text, cny=money_text, kib=kib)


@bp.route("/supervision/statistics.csv")
def statistics_csv():
    """One row per month with every numeric column (UTF-8 with BOM; averages empty without data)."""
    query = stats.parse_query(request.args)  # a refusal goes to the error page, saying which field to fix
    out = io.StringIO()
    out.write("\ufeff")
    stats.write_csv(stats.collect(query), out)
    name = f"statistics-{query.start.isoformat()}-{query.end.isoformat()}{'-' + query.region if query.region else ''}"
    return Response(out.getvalue().encode("utf-8"), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{name}.csv"'})


def register(app: Flask) -> None:
    """Attach the dashboard to ``app`` (once)."""
    if bp.name not in app.blueprints:
        app.register_blueprint(bp)
