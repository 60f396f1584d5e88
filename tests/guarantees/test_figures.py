"""The figures a centre reports: exact sums per period and region, CSV, the API and the CLI."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from core.clock import clock
from core.db import db
from guarantees import apply_for_guarantee, figures_for, parse_period, use_waiver, write_csv
from guarantees.figures import Figures, OrderRow, WaiverRow, aggregate
from tests.guarantees.conftest import issue

T0 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "label", "start", "end"), [
    ("2026-03", "2026-03", "2026-02-28T16:00:00+00:00", "2026-03-31T16:00:00+00:00"),
    ("2026-12", "2026-12", "2026-11-30T16:00:00+00:00", "2026-12-31T16:00:00+00:00"),
    ("2026-Q1", "2026-Q1", "2025-12-31T16:00:00+00:00", "2026-03-31T16:00:00+00:00"),
    ("2026-q4", "2026-Q4", "2026-09-30T16:00:00+00:00", "2026-12-31T16:00:00+00:00"),
    ("2026", "2026", "2025-12-31T16:00:00+00:00", "2026-12-31T16:00:00+00:00"),
])
def test_periods_are_beijing_calendar_periods(text, label, start, end):
    period = parse_period(text)
    assert (period.label, period.start.isoformat(), period.end.isoformat()) == (label, start, end)


@pytest.mark.parametrize("text", ["2026-13", "2026-Q5", "26", "2026/03", "", "March"])
def test_bad_periods(text):
    with pytest.raises(ValueError, match="a year"):
        parse_period(text)


def test_aggregate_is_exact():
    rows = [OrderRow(D("800000.00"), D("640.00"), D("1.5")),    # saves 1200.00 - 640.00
            OrderRow(D("500000.00"), D("400.00"), D("1.5")),    # saves 750.00 - 400.00
            OrderRow(D("100000.00"), D("300.00"), D("1.5")),    # minimum fee above the reference: 0
            OrderRow(D("333.33"), D("0.10"), D("1.5")),         # 0.499995 -> 0.50, saves 0.40
            OrderRow(D("1000.00"), D("1.00"), None)]            # no policy: nothing saved
    figures = aggregate("2026-03", None, rows, [WaiverRow(D("20000.00")), WaiverRow(None)])
    assert figures == Figures("2026-03", None, 5, D("1401333.33"), D("1341.10"), D("910.40"), 2, D("20000.00"))
    assert aggregate("2026", "370200", [], []) == Figures("2026", "370200", 0, D("0.00"), D("0.00"), D("0.00"), 0,
                                                          D("0.00"))


def test_csv():
    out = io.StringIO()
    write_csv([Figures("2026-03", "370200", 2, D("1300000.00"), D("1040.00"), D("910.00"), 1, D("20000.00")),
               Figures("2026-04", None, 0, D("0.00"), D("0.00"), D("0.00"), 0, D("0.00"))], out)
    assert out.getvalue() == (
        "period,region,guarantees_issued,guaranteed_amount,premiums_paid,premiums_saved,waivers,bond_waived\n"
        "2026-03,370200,2,1300000.00,1040.00,910.00,1,20000.00\n"
        "2026-04,,0,0.00,0.00,0.00,0,0.00\n")


@pytest.fixture
def frozen(app):
    clock.freeze(T0)


@pytest.fixture
def activity(app, frozen, client, market, create_tender, create_bidder):
    """Four letters (three in March, one issued 00:30 on 1 April Beijing time) and one waiver."""
    _, product, keys = market

    def tender(region, estimate, bond, **extra):
        return create_tender(publish=True, region=region, estimated_price=D(estimate), ceiling_price=None,
                             lots=[{"title": "Lot 1", "estimated_price": D(estimate), "bond_amount": D(bond)}],
                             **extra)

    qingdao_district = tender("370211", "40000000.00", "800000.00")
    qingdao = tender("370200", "25000000.00", "500000.00")
    beijing = tender("110000", "5000000.00", "100000.00")
    waived = tender("370200", "1000000.00", "20000.00", guarantee_policy={"mode": "waived_all"})
    db.session.commit()
    issued = [(qingdao_district, T0), (qingdao, T0), (beijing, T0),
              (qingdao, datetime(2026, 3, 31, 16, 30, tzinfo=UTC))]
    for n, (where, issued_at) in enumerate(issued):
        _, _, actor = create_bidder()
        order = apply_for_guarantee(actor, where, where.lots[0], product, "plain")
        db.session.commit()
        issue(client, keys, order, guarantee_no=f"GN-F{n}", issued_at=issued_at)
    _, _, actor = create_bidder()
    use_waiver(actor, waived, waived.lots[0], "waived_all", "We commit to the bid terms without a bond.")
    db.session.commit()


def test_collect_exact_figures_per_period_and_region(activity):
    march = figures_for(parse_period("2026-03"))
    assert march == Figures("2026-03", None, 3, D("1400000.00"), D("1340.00"), D("910.00"), 1, D("20000.00"))
    assert figures_for(parse_period("2026-03"), "370200") == Figures(
        "2026-03", "370200", 2, D("1300000.00"), D("1040.00"), D("910.00"), 1, D("20000.00"))
    assert figures_for(parse_period("2026-03"), "110000").guarantees_issued == 1
    assert figures_for(parse_period("2026-04")) == Figures("2026-04", None, 1, D("500000.00"), D("400.00"),
                                                           D("350.00"), 0, D("0.00"))
    assert figures_for(parse_period("2026-Q1")).guaranteed_amount == D("1400000.00")
    year = figures_for(parse_period("2026"))
    assert (year.guarantees_issued, year.guaranteed_amount, year.premiums_paid, year.premiums_saved) == (
        4, D("1900000.00"), D("1740.00"), D("1260.00"))


def test_figures_api_and_cli(activity, app, client):
    body = client.get("/api/guarantees/figures", query_string={"period": "2026-03", "region": "370200"}).get_json()
    assert body == {"period": "2026-03", "region": "370200", "guarantees_issued": 2,
                    "guaranteed_amount": "1300000.00", "premiums_paid": "1040.00", "premiums_saved": "910.00",
                    "waivers": 1, "bond_waived": "20000.00"}
    assert client.get("/api/guarantees/figures", query_string={"period": "March"}).status_code == 422
    result = app.test_cli_runner().invoke(args=["guarantees", "figures", "--period", "2026-03", "--period",
                                                "2026-04", "--csv"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1:] == ["2026-03,,3,1400000.00,1340.00,910.00,1,20000.00",
                                              "2026-04,,1,500000.00,400.00,350.00,0,0.00"]
