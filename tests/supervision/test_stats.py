"""The statistics dashboard (统计): exact figures on a seeded database, filters, CSV, charts and who may look."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import select

from bidding.models import Tender, TenderStatus
from bidding.opening_models import BidOpening, OpeningSession
from bidding.sealed_models import Bid
from core.clock import as_utc, clock
from core.db import db
from core.errors import ValidationFailed
from evaluation.pool_models import CommitteeMember, Expert
from evaluation.result_models import Award
from guarantees import apply_for_guarantee, use_waiver
from supervision import stats, views_stats
from tests.evaluation.room_support import *  # noqa: F403  (make_room and the fixtures it needs)
from tests.factories import PASSWORD
from tests.guarantees.conftest import (  # noqa: F401  (fixtures)
    create_bidder,
    issue,
    make_issuer,
    market,
    policy,
    stub_issuer,
)

FEB = datetime(2026, 2, 10, 2, 0, tzinfo=UTC)
MARCH = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
TODAY = datetime(2026, 4, 15, 2, 0, tzinfo=UTC)


@pytest.fixture
def dashboard(app):
    views_stats.register(app)
    return app


def login(client, person):
    db.session.commit()
    response = client.post("/login", data={"email": person.email, "password": PASSWORD})
    assert response.status_code == 302, response.data
    return client


def days(later: datetime, earlier: datetime) -> D:
    return (D((as_utc(later) - as_utc(earlier)).total_seconds()) / 86400).quantize(D("0.1"))


@pytest.fixture
def seeded(dashboard, make_room, create_tender, create_bidder, market, client):  # noqa: F811
    """Six published tenders (two in February 2026, four in March) and a draft; one awarded after a room."""
    r = make_room(experts=5, bidders=3)  # published 2 March 2026, opened online, evaluated (remote draw)
    tender = db.session.get(Tender, r.tender_id)
    experts = db.session.scalars(select(Expert).join(CommitteeMember, CommitteeMember.expert_id == Expert.id)
                                 .where(CommitteeMember.tender_id == tender.id).order_by(Expert.id)).all()
    experts[0].region = "370211"  # a district of the host city 370200; the others live in 370100
    winner = db.session.get(BidOpening, r.bid_ids[0])
    db.session.add(Award(tender_id=tender.id, lot_id=winner.lot_id, organisation_id=winner.organisation_id,
                         bid_opening_id=winner.id, amount=D("900000.00"), mode="rank_first",
                         decided_by_id=r.host.id, notified_at=tender.published_at + timedelta(days=40, hours=12)))
    tender.status = TenderStatus.AWARDED
    db.session.commit()

    def long_deadline():  # still open for bids on TODAY: the deadline closing must not fail them
        return {"bid_deadline_at": clock.now() + timedelta(days=80)}

    clock.freeze(FEB)
    cancelled = create_tender(publish=True, **long_deadline())
    cancelled.status = TenderStatus.CANCELLED
    create_tender(publish=True, region="110000", **long_deadline())
    clock.freeze(MARCH)
    failed = create_tender(publish=True, **long_deadline())
    failed.status = TenderStatus.FAILED
    create_tender()  # a draft: never counted
    _, product, keys = market
    bonded = create_tender(publish=True, estimated_price=D("25000000.00"), ceiling_price=None,
                           lots=[{"title": "Lot 1", "estimated_price": D("25000000.00"),
                                  "bond_amount": D("500000.00")}], **long_deadline())
    waived = create_tender(publish=True, guarantee_policy={"mode": "waived_all"}, **long_deadline())
    db.session.commit()
    _, _, actor = create_bidder()
    order = apply_for_guarantee(actor, bonded, bonded.lots[0], product, "plain")
    db.session.commit()
    issue(client, keys, order, guarantee_no="GN-S1", issued_at=MARCH)
    _, _, actor = create_bidder()
    use_waiver(actor, waived, waived.lots[0], "waived_all", "We commit to the bid terms without a bond.")
    db.session.commit()
    clock.freeze(TODAY)
    return r


def test_default_range_is_the_last_twelve_months():
    query = stats.parse_query({}, today=date(2026, 4, 15))
    assert (query.start, query.end, query.region) == (date(2025, 5, 1), date(2026, 4, 15), None)
    assert query.months[0] == "2025-05" and query.months[-1] == "2026-04" and len(query.months) == 12
    assert query.start_at == datetime(2025, 4, 30, 16, 0, tzinfo=UTC)  # Beijing midnight
    assert query.end_at == datetime(2026, 4, 15, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize(("args", "field"), [
    ({"from": "2026-13-01"}, "from"), ({"to": "15/04/2026"}, "to"), ({"region": "Qingdao"}, "region"),
    ({"from": "2026-03-02", "to": "2026-03-01"}, "to"), ({"from": "2020-01-01", "to": "2026-03-01"}, "from"),
])
def test_bad_filters_name_the_field(app, args, field):
    with pytest.raises(ValidationFailed) as info:
        stats.parse_query(args, today=date(2026, 4, 15))
    assert list(info.value.fields) == [field]


def test_figures_on_a_seeded_database(seeded):
    r = seeded
    data = stats.collect(stats.parse_query({}))
    months = {m.label: m for m in data.months}
    feb, march, total = months["2026-02"], months["2026-03"], data.total
    assert (feb.tenders_published, march.tenders_published, total.tenders_published) == (2, 4, 6)
    assert feb.stages == {"published": 1, "opening": 0, "evaluation": 0, "publicity": 0, "awarded": 0, "failed": 0,
                          "cancelled": 1}
    assert march.stages == {"published": 2, "opening": 0, "evaluation": 0, "publicity": 0, "awarded": 1,
                            "failed": 1, "cancelled": 0}
    assert all(m.tenders_published == 0 for m in data.months if m.label not in ("2026-02", "2026-03"))
    # the online opening: two bids decrypted with the bidders' keys, the third failed
    assert (march.reached_opening, march.bids_opened, march.decrypted_by_bidder, march.decrypted_by_custodians,
            march.decrypted_both, march.bids_failed) == (1, 2, 2, 0, 0, 1)
    # the evaluation: a remote draw; one member from the host city's district, four from elsewhere
    assert (march.evaluations, march.remote_evaluations, march.members_host_region,
            march.members_other_regions) == (1, 1, 1, 4)
    assert data.expert_regions == [("370100", 4, False), ("370211", 1, True)]
    # times: award notice 40.5 days after the notice; opening at the decryption start
    tender = db.session.get(Tender, r.tender_id)
    session = db.session.get(OpeningSession, r.tender_id)
    assert (march.awards, march.avg_days_to_award, total.avg_days_to_award) == (1, D("40.5"), D("40.5"))
    assert march.avg_days_to_opening == days(session.decryption_started_at, tender.published_at) > D(20)
    assert feb.avg_days_to_award is None and feb.avg_days_to_opening is None
    # materials: the three current bids' envelopes
    sizes = db.session.scalars(select(Bid.envelope_size).where(Bid.tender_id == r.tender_id,
                                                               Bid.is_current.is_(True))).all()
    assert len(sizes) == march.bids == 3
    assert march.avg_envelope_bytes == (D(sum(sizes)) / 3).quantize(D(1)) > 0
    # e-guarantees, from the guarantee figures: one letter of 500 000.00 at 0.8‰ (400.00; 1.5‰ = 750.00)
    g = march.guarantees
    assert (g.guarantees_issued, g.guaranteed_amount, g.premiums_paid, g.premiums_saved, g.waivers,
            g.bond_waived) == (1, D("500000.00"), D("400.00"), D("350.00"), 1, D("20000.00"))
    assert total.guarantees.premiums_saved == D("350.00") and feb.guarantees.guarantees_issued == 0


def test_filters_by_date_and_region(seeded):
    march_only = stats.collect(stats.parse_query({"from": "2026-03-01", "to": "2026-03-31"}))
    assert [m.label for m in march_only.months] == ["2026-03"]
    assert march_only.total.tenders_published == 4 and march_only.total.awards == 1
    qingdao = stats.collect(stats.parse_query({"region": "370200"}))
    assert qingdao.total.tenders_published == 5 and qingdao.total.stages["cancelled"] == 1
    assert qingdao.total.guarantees.guarantees_issued == 1
    beijing = stats.collect(stats.parse_query({"region": "110000"}))
    assert (beijing.total.tenders_published, beijing.total.stages["published"], beijing.total.awards,
            beijing.total.guarantees.guarantees_issued, beijing.total.guarantees.waivers) == (1, 1, 0, 0, 0)
    before = stats.collect(stats.parse_query({"from": "2026-01-01", "to": "2026-02-28"}))
    assert before.total.tenders_published == 2 and before.total.bids == 0 and before.total.avg_envelope_bytes is None


def test_page_shows_charts_and_tables(seeded, client, create_person):
    login(client, create_person(roles=("supervisor",)))
    response = client.get("/supervision/statistics")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for key in ("tenders", "openings", "evaluations", "days", "materials", "guarantees"):
        assert f'data-chart="{key}"' in html
    assert html.count("<svg") == 6 and html.count('<title id="chart-') == 6
    assert 'class="axis-label y-axis-label"' in html and "Month of publication" in html
    assert html.count('data-series="awarded"') == 1 and html.count('data-series="cancelled"') == 1
    assert 'data-series="award"' in html and "<circle" in html
    assert '<tr data-month="total" class="total"><td>Total</td><td class="num" data-col="tenders_published">6</td>' \
        in html
    assert 'data-col="premiums_saved">350.00</td>' in html
    assert 'data-col="avg_days_to_award">40.5</td>' in html
    filtered = client.get("/supervision/statistics", query_string={"region": "110000"}).get_data(as_text=True)
    assert 'data-col="tenders_published">1</td>' in filtered and 'value="110000"' in filtered


def test_page_refuses_bad_filters_saying_what_to_fix(dashboard, client, create_person):
    login(client, create_person(roles=("admin",)))
    response = client.get("/supervision/statistics", query_string={"from": "2026-03-02", "to": "2026-03-01"})
    assert response.status_code == 422
    assert "The end date must not be before the start date." in response.get_data(as_text=True)
    assert client.get("/supervision/statistics.csv", query_string={"region": "x"}).status_code == 422


def test_csv_one_row_per_month_with_bom(seeded, client, create_person):
    login(client, create_person(roles=("admin",)))
    response = client.get("/supervision/statistics.csv", query_string={"from": "2026-02-01", "to": "2026-03-31"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="statistics-2026-02-01-2026-03-31.csv"' in response.headers["Content-Disposition"]
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [row["month"] for row in rows] == ["2026-02", "2026-03"]
    assert list(rows[0]) == list(stats.CSV_COLUMNS)
    feb, march = rows
    assert (feb["tenders_published"], feb["status_cancelled"], feb["avg_days_to_award"]) == ("2", "1", "")
    assert {k: march[k] for k in ("tenders_published", "status_awarded", "bids_opened", "bids_failed",
                                  "remote_evaluations", "members_other_regions", "avg_days_to_award",
                                  "guarantees_issued", "guaranteed_amount", "premiums_paid", "premiums_saved",
                                  "waivers", "bond_waived")} == {
        "tenders_published": "4", "status_awarded": "1", "bids_opened": "2", "bids_failed": "1",
        "remote_evaluations": "1", "members_other_regions": "4", "avg_days_to_award": "40.5",
        "guarantees_issued": "1", "guaranteed_amount": "500000.00", "premiums_paid": "400.00",
        "premiums_saved": "350.00", "waivers": "1", "bond_waived": "20000.00"}


@pytest.mark.parametrize(("roles", "status"), [(("supervisor",), 200), (("admin",), 200), (("expert",), 403)])
def test_who_may_see_the_statistics(dashboard, client, create_person, roles, status):
    login(client, create_person(roles=roles))
    assert client.get("/supervision/statistics").status_code == status
    assert client.get("/supervision/statistics.csv").status_code == status


def test_bidders_are_refused_and_visitors_sent_to_log_in(dashboard, client, create_person, create_org):
    login(client, create_person(roles=("bidder",), organisation=create_org()))
    refused = client.get("/supervision/statistics")
    assert refused.status_code == 403
    assert "Only supervisors and platform administrators may see the statistics." in refused.get_data(as_text=True)
    visitor = dashboard.test_client()
    response = visitor.get("/supervision/statistics?region=370200")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert "next=" in response.headers["Location"]
    assert visitor.get("/supervision/statistics.csv", headers={"Authorization": "Bearer nonsense"}).status_code == 401


def test_chart_geometry_stacks_and_scales():
    chart = views_stats.build_chart("k", "Title", "Count", ["2026-01", "2026-02"], [
        views_stats.Series("a", "A", "#000", [3, 0]), views_stats.Series("b", "B", "#fff", [2, None])],
        kind="stacked")
    assert [(rect.series, round(rect.height, 1)) for rect in chart.rects] == [("a", 120.0), ("b", 80.0)]
    assert chart.ticks[-1][1] == "5" and chart.ticks[0][1] == "0"
    bottom = chart.rects[0].y + chart.rects[0].height
    assert bottom == pytest.approx(chart.bottom) and chart.rects[1].y + chart.rects[1].height == pytest.approx(
        chart.rects[0].y)
    line = views_stats.build_chart("d", "Days", "Days", ["2026-01", "2026-02"],
                                   [views_stats.Series("x", "X", "#000", [None, D("12.5")])], kind="line")
    assert len(line.lines[0].dots) == 1 and line.lines[0].dots[0][2] == "2026-02 · X: 12.5"
