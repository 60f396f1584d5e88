"""Browser test: a tenderer drafts and publishes a tender; a visitor finds it and watches the countdown.

The real app is served by werkzeug in a background thread against the test database, with CSRF on as in
production; Debian's Chromium is driven headless by Playwright. Screenshots go to test-artifacts/e2e/.
"""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from bidding.models import Tender, TenderStatus
from core.clock import beijing, now
from core.db import db
from core.identity.models import OrganisationKind
from ebid.app_paths import ROOT
from tests.factories import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium (/usr/bin/chromium) is not "
                                                               "installed: apt-get install chromium")]


@pytest.fixture
def live_server(csrf_app):
    """The app on a free port of 127.0.0.1, served from a background thread."""
    server = make_server("127.0.0.1", 0, csrf_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def browser_context(tmp_path):
    """A function opening a fresh Chromium profile (own user-data dir) per person."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    contexts = []
    with sync_playwright() as playwright:
        def open_context(name: str):
            context = playwright.chromium.launch_persistent_context(
                str(tmp_path / f"profile-{name}"), executable_path=str(CHROMIUM), headless=True,
                args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900}, locale="zh-CN",
                timezone_id="Europe/London")  # the countdown must not depend on the browser's zone
            context.set_default_timeout(15000)
            contexts.append(context)
            return context
        yield open_context
        for context in contexts:
            context.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def local(value) -> str:
    """A datetime-local input's value in Beijing time."""
    return f"{beijing(value):%Y-%m-%dT%H:%M}"


def test_tenderer_publishes_and_visitor_finds_the_countdown(live_server, browser_context, create_org,
                                                            create_person, tmp_path):
    org = create_org(kind=OrganisationKind.TENDERER, name="青岛市市政工程管理处", region="370200")
    tenderer = create_person(roles=("tenderer",), organisation=org, name="王经理")
    db.session.commit()
    start = now()
    documents = tmp_path / "招标文件.pdf"
    documents.write_bytes(b"%PDF-1.4\n% tender documents for the e2e test\n")

    page = browser_context("tenderer").new_page()
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", tenderer.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(re.compile(r"/account"))

    page.goto(f"{live_server}/tenders/new")
    page.fill("#title", "胶州湾海底隧道照明改造工程")
    page.fill("#description", "隧道照明系统更换为LED灯具，含控制系统。")
    page.select_option("#regime", "works")
    page.select_option("#category", "works")
    page.fill("#estimated_price", "3000000")
    page.fill("#ceiling_price", "2950000")
    page.fill("#documents_until_at", local(start + timedelta(days=10)))
    page.fill("#question_deadline_at", local(start + timedelta(days=15)))
    page.fill("#bid_deadline_at", local(start + timedelta(days=30, hours=2)))
    page.fill("[name='lots.0.title']", "一标段：照明灯具")
    page.fill("[name='lots.0.estimated_price']", "2000000")
    page.fill("[name='lots.0.bond_amount']", "40000")
    page.click("[data-add-row]")
    page.fill("[name='lots.1.title']", "二标段：控制系统")
    page.fill("[name='lots.1.estimated_price']", "1000000")
    shot(page, "01-draft-form")
    page.click("#tender-form button[type=submit]")
    page.wait_for_url(re.compile(r"/tenders/\d+/manage"))

    page.set_input_files("#files", str(documents))
    page.click("#upload button[type=submit]")
    page.wait_for_selector("text=招标文件.pdf")
    shot(page, "02-manage-draft")
    page.click("#publish button[type=submit]")
    page.wait_for_url(re.compile(r"/tenders/\d+$"))
    shot(page, "03-published-detail")

    tender = db.session.scalar(select(Tender).where(Tender.title == "胶州湾海底隧道照明改造工程"))
    db.session.refresh(tender)
    assert tender.status == TenderStatus.PUBLISHED and len(tender.lots) == 2 and len(tender.documents) == 1
    assert local(tender.bid_deadline_at) == local(start + timedelta(days=30, hours=2))

    visitor = browser_context("visitor").new_page()
    visitor.goto(f"{live_server}/tenders")
    visitor.fill("#q", "海底隧道")
    visitor.click("form[role=search] button[type=submit]")
    row = visitor.locator(f"tr[data-tender-id='{tender.id}']")
    row.wait_for()
    assert visitor.locator("tr[data-tender-id]").count() == 1
    shot(visitor, "04-visitor-search")
    row.locator("a").click()
    visitor.wait_for_url(re.compile(rf"/tenders/{tender.id}$"))

    countdown = visitor.locator("[data-countdown]")
    first = countdown.inner_text()
    assert re.fullmatch(r"30\D+0[12]:\d\d:\d\d", first), first  # ~30 days 2 hours, from server time
    visitor.wait_for_timeout(1500)
    assert countdown.inner_text() != first  # ticking in the browser
    assert "北京时间" in visitor.locator("[data-section=periods]").inner_text()
    assert tender.documents[0].sha256 in visitor.content()
    shot(visitor, "05-visitor-detail-countdown")

    visitor.click("a[data-lang=en]")
    visitor.wait_for_url(re.compile(r"lang=en"))
    assert visitor.locator("html").get_attribute("lang") == "en"
    shot(visitor, "06-visitor-detail-en")
