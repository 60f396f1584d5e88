"""The figures page: the table, the server-drawn SVG chart, the CSV with the exact numbers of a seeded
dataset, refusals of bad parameters, and the pure helpers behind them (periods, axes, bars)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from core.clock import BEIJING
from core.db import db
from guarantees import Figures, OrderState, apply_for_guarantee
from guarantees.models import BondWaiver, GuaranteeOrder, WaiverKind
from guarantees.views_figures import build_chart, current_label, labels_until, nice_ceiling


@pytest.fixture
def settings(settings):
    """Queue tasks instead of running them (the seeded orders are never sent anywhere)."""
    settings.extra["celery_always_eager"] = False
    settings.redis_url = None
    return settings


def text(response) -> str:
    return response.get_data(as_text=True)


# -- figures ---------------------------------------------------------------------------------------

def _issued(bidder, tender, product, at: datetime) -> GuaranteeOrder:
    order = apply_for_guarantee(bidder[2], tender, tender.lots[0], product, "plain")
    order.state = OrderState.ISSUED
    order.issued_at = at
    db.session.commit()
    return order


def bj(*args) -> datetime:
    return datetime(*args, tzinfo=BEIJING).astimezone(UTC)


@pytest.fixture
def seeded_figures(create_tender, create_bidder, make_issuer, policy):
    """Three letters in January and March 2025 (one outside region 3702), one waiver in March."""
    _bank, bank_product, _ = make_issuer("BANK1", rate="1.0", minimum_fee="100.00")
    _ins, ins_product, _ = make_issuer("INS2", kind="insurer", rate="0.8", minimum_fee="10.00")
    small = create_tender(publish=True)  # bond 20 000.00
    big = create_tender(publish=True, estimated_price=D("12800000.00"), ceiling_price=D("12500000.00"),
                        lots=[{"title": "Roads", "estimated_price": D("12800000.00"), "bond_amount": D("250000.00")}])
    beijing_one = create_tender(publish=True, region="110105", estimated_price=D("8600000.00"),
                                ceiling_price=D("8300000.00"),
                                lots=[{"title": "Lighting", "estimated_price": D("8600000.00"),
                                       "bond_amount": D("160000.00")}])
    db.session.commit()
    _issued(create_bidder(), small, ins_product, bj(2025, 1, 15, 10, 0))        # 16.00 paid, 30.00 at 1.5‰
    _issued(create_bidder(), big, bank_product, bj(2025, 3, 1, 0, 0))          # 250.00 paid, 375.00 at 1.5‰
    _issued(create_bidder(), beijing_one, ins_product, bj(2025, 3, 31, 23, 59))  # 128.00 paid, 240.00 at 1.5‰
    _issued(create_bidder(), small, ins_product, bj(2025, 4, 1, 0, 0))         # April: outside the table
    sme = create_bidder(is_sme=True)
    waiver = BondWaiver(tender_id=small.id, lot_id=small.lots[0].id, bidder_id=sme[0].id,
                        kind=WaiverKind.CREDIT_COMMITMENT, statement="信用承诺:截止后不撤回投标。",
                        bond_amount=D("20000.00"), created_at=bj(2025, 3, 10, 9, 0))
    db.session.add(waiver)
    db.session.commit()


def test_figures_page_draws_an_svg_chart_and_the_csv_has_the_exact_numbers(client, seeded_figures):
    page = client.get("/guarantees/figures?period=month&until=2025-03&count=3")
    html = text(page)
    assert page.status_code == 200 and "<svg" in html and "<script" not in html.split("<svg")[1].split("</svg>")[0]
    assert len(re.findall(r'class="bar-amount" x="[^"]+" y=', html)) == 3
    assert len(re.findall(r'class="bar-saved" x="[^"]+" y=', html)) == 3
    assert 'data-period="2025-03"' in html and "410,000.00" in html and "394.00" in html

    csv = client.get("/guarantees/figures.csv?period=month&until=2025-03&count=3")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert "attachment" in csv.headers["Content-Disposition"]
    assert text(csv) == (
        "period,region,guarantees_issued,guaranteed_amount,premiums_paid,premiums_saved,waivers,bond_waived\n"
        "2025-01,,1,20000.00,16.00,14.00,0,0.00\n"
        "2025-02,,0,0.00,0.00,0.00,0,0.00\n"
        "2025-03,,2,410000.00,378.00,237.00,1,20000.00\n")
    regional = text(client.get("/guarantees/figures.csv?period=quarter&until=2025-Q1&count=1&region=370200"))
    assert regional.splitlines()[1] == "2025-Q1,370200,2,270000.00,266.00,139.00,1,20000.00"
    year = text(client.get("/guarantees/figures.csv?period=year&until=2025&count=1"))
    assert year.splitlines()[1] == "2025,,4,450000.00,410.00,265.00,1,20000.00"

    client.environ_base.pop("HTTP_ACCEPT_LANGUAGE")
    chinese = client.get("/guarantees/figures?period=quarter&until=2025-Q1&count=2")
    assert chinese.status_code == 200 and 'lang="zh-CN"' in text(chinese) and "<svg" in text(chinese)


def test_figures_refuse_bad_parameters_saying_which(client, seeded_figures):
    bad = client.get("/guarantees/figures?period=month&until=2025-Q1")
    assert bad.status_code == 422 and 'data-field="until"' in text(bad) and "2025-03" in text(bad)
    assert client.get("/guarantees/figures?period=week").status_code == 422
    assert client.get("/guarantees/figures?region=shandong").status_code == 422
    assert client.get("/guarantees/figures.csv?count=99").status_code == 422
    empty = client.get("/guarantees/figures?period=year")  # the current year: no letters, still a chart
    assert empty.status_code == 200 and "<svg" in text(empty)


# -- the figures page's pure helpers ---------------------------------------------------------------

@pytest.mark.parametrize(("value", "ceiling"), [
    ("0", "1"), ("0.4", "0.5"), ("1", "1"), ("1.01", "2"), ("2.3", "2.5"), ("3", "5"), ("760.00", "1000"),
    ("820000.00", "1000000"), ("190000", "200000"), ("250001", "500000"), ("9999", "10000"),
])
def test_chart_axes_end_on_a_readable_number(value, ceiling):
    assert nice_ceiling(D(value)) == D(ceiling)


@pytest.mark.parametrize(("kind", "until", "count", "labels"), [
    ("month", "2025-02", 3, ["2024-12", "2025-01", "2025-02"]),
    ("month", "2025-12", 1, ["2025-12"]),
    ("quarter", "2025-Q2", 4, ["2024-Q3", "2024-Q4", "2025-Q1", "2025-Q2"]),
    ("year", "2025", 3, ["2023", "2024", "2025"]),
])
def test_periods_count_back_from_the_last_one(kind, until, count, labels):
    assert labels_until(kind, until, count) == labels


@pytest.mark.parametrize(("at", "kind", "label"), [
    (datetime(2025, 3, 31, 16, 0, tzinfo=UTC), "month", "2025-04"),    # 00:00 on 1 April in Beijing
    (datetime(2025, 3, 31, 15, 59, tzinfo=UTC), "month", "2025-03"),
    (datetime(2025, 12, 31, 16, 30, tzinfo=UTC), "quarter", "2026-Q1"),
    (datetime(2025, 6, 30, 12, 0, tzinfo=UTC), "quarter", "2025-Q2"),
    (datetime(2025, 12, 31, 16, 30, tzinfo=UTC), "year", "2026"),
])
def test_the_current_period_is_counted_in_beijing_time(at, kind, label):
    assert current_label(kind, at) == label


def test_the_chart_scales_bars_to_the_axis_and_titles_each_bar_with_exact_amounts(app):
    rows = [Figures("2025-01", None, 1, D("20000.00"), D("16.00"), D("14.00"), 0, D("0.00")),
            Figures("2025-02", None, 2, D("410000.00"), D("378.00"), D("237.00"), 1, D("20000.00"))]
    chart = build_chart(rows)
    amount, premiums = chart.panels
    assert [t[1] for t in amount.ticks] == ["0", "12.5", "25", "37.5", "50"]  # 万元 up to 500 000 CNY
    assert amount.bars[1].height == pytest.approx(amount.height * 410000 / 500000)
    assert premiums.bars[2].height == pytest.approx(premiums.height * 378 / 500)
    assert "410,000.00" in amount.bars[1].title and "237.00" in premiums.bars[3].title
    assert [label for _x, label in chart.labels] == ["2025-01", "2025-02"]
