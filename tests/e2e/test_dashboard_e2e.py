"""Browser test of the statistics dashboard (统计): a supervisor logs in and sees every chart drawn.

Tenders published in two months (one awarded, one cancelled, others open or failed at their deadline) are
seeded; the supervisor opens /supervision/statistics in Chromium (Chinese locale, the shipped CJK font),
every chart's SVG has a real size on the page, bars are drawn, the tables are there, and the CSV link works.
The screenshot goes to test-artifacts/e2e/dashboard.png.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from bidding.models import TenderStatus
from core.clock import clock, now
from core.db import db
from supervision import views_stats
from tests.e2e.test_guarantees_e2e import browser_context  # noqa: F401  (fixture: Chromium with the CJK font)
from tests.e2e.test_publish_flow import CHROMIUM, live_server, shot  # noqa: F401  (live_server is a fixture)
from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium (/usr/bin/chromium) is not "
                                                               "installed: apt-get install chromium")]

CHARTS = ("tenders", "openings", "evaluations", "days", "materials", "guarantees")


@pytest.fixture
def seeded(csrf_app, create_tender, create_person):
    """The dashboard registered, five published tenders over two months and a supervisor."""
    views_stats.register(csrf_app)
    clock.freeze(now() - timedelta(days=40))
    earlier = create_tender(publish=True)
    earlier.status = TenderStatus.CANCELLED
    create_tender(publish=True, region="370211")
    clock.reset()
    awarded = create_tender(publish=True)
    awarded.status = TenderStatus.AWARDED
    create_tender(publish=True)
    create_tender(publish=True, region="110000")
    supervisor = create_person(roles=("supervisor",), name="监督人员 马骏")
    db.session.commit()
    return supervisor


def test_supervisor_sees_the_dashboard_charts(seeded, live_server, browser_context):  # noqa: F811
    page = browser_context("supervisor").new_page()
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", seeded.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(re.compile(r"/account"))

    page.goto(f"{live_server}/supervision/statistics")
    assert page.locator("h1").count() == 1
    for key in CHARTS:
        svg = page.locator(f"[data-chart='{key}'] svg")
        box = svg.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100, key
        assert svg.locator("title").first.text_content().strip(), key
        assert svg.locator(".y-axis-label").text_content().strip(), key
    bars = page.locator("[data-chart='tenders'] rect.bar")
    assert bars.count() >= 3  # published, cancelled and awarded in the months seeded
    for i in range(bars.count()):
        box = bars.nth(i).bounding_box()
        assert box is not None and box["width"] > 0 and box["height"] > 0
    total = page.locator("table[data-table='tenders'] tr[data-month='total'] td[data-col='tenders_published']")
    assert total.text_content() == "5"
    assert page.locator("table[data-table='guarantees']").is_visible()
    shot(page, "dashboard")

    with page.expect_download() as download:
        page.click("a[data-csv]")
    content = Path(download.value.path()).read_bytes()
    assert content.startswith(b"\xef\xbb\xbfmonth,region,tenders_published,")
    assert len(content.decode("utf-8-sig").strip().splitlines()) == 13  # header and 12 months
