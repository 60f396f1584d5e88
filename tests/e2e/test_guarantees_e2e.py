"""Browser test of e-guarantees (电子保函): offers side by side, apply, the letter issued over HTTP, verification.

Two reference issuers (``guarantees.issuer_sim``, as in ``ebid demo``) run as real HTTP services on
127.0.0.1; the platform is the live server of test_publish_flow (CSRF on). A bidder opens a lot's
guarantee page, sees both issuers' offers side by side, chooses one and applies; the order goes to the
issuer over HTTP, which underwrites, seals the letter (PAdES) and calls the platform back. The bidder
sees the letter issued, binds it to the bid, downloads it; a visitor verifies it on the public page by
number and code, then by uploading the PDF. Screenshots go to test-artifacts/e2e/.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from core.db import db
from core.identity.models import OrganisationKind
from core.pdf import CJK_FONT_PATH
from guarantees import OrderState, add_product, admit_issuer
from guarantees import platform_id as platform_sender
from guarantees.issuer_sim import SimConfig, create_app
from guarantees.keys import platform_key
from guarantees.models import GuaranteeOrder
from tests.e2e.test_publish_flow import (  # noqa: F401  (live_server is a fixture)
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    live_server,
    shot,
)
from tests.factories import PASSWORD
from tests.guarantees.conftest import ADMIN, create_bidder, policy, tender  # noqa: F401  (fixtures)
from tests.guarantees.sim_support import serve, stop

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium (/usr/bin/chromium) is not "
                                                               "installed: apt-get install chromium")]

ISSUERS = (("QDBANK", "青岛示范银行(模拟)", "bank", "1.0"), ("HXINS", "华信财产保险(模拟)", "insurer", "0.8"))
WAIT = 30.0


FONTS_CONF = """<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
<fontconfig><include ignore_missing="yes">/etc/fonts/fonts.conf</include><dir>{fonts}</dir></fontconfig>
"""


@pytest.fixture
def browser_context(tmp_path):
    """test_publish_flow's Chromium profiles, plus the shipped CJK font so the screenshots show Chinese."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    conf = tmp_path / "fonts.conf"
    conf.write_text(FONTS_CONF.format(fonts=CJK_FONT_PATH.parent), encoding="utf-8")
    contexts = []
    with sync_playwright() as playwright:
        def open_context(name: str):
            context = playwright.chromium.launch_persistent_context(
                str(tmp_path / f"profile-{name}"), executable_path=str(CHROMIUM), headless=True,
                args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900}, locale="zh-CN",
                env={**os.environ, "FONTCONFIG_FILE": str(conf)})
            context.set_default_timeout(15000)
            contexts.append(context)
            return context
        yield open_context
        for context in contexts:
            context.close()


def _pem(cert) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


@pytest.fixture
def issuers(app, live_server, tmp_path, create_org, policy):  # noqa: F811
    """Both simulated issuers served over HTTP and admitted, one product each (1.0‰ and 0.8‰)."""
    running = []
    for code, name, kind, rate in ISSUERS:
        config = SimConfig(code=code, name=name, kind=kind, data_dir=tmp_path / code, platform_url=live_server,
                           platform_id=platform_sender(), platform_public_key=platform_key().public_key(),
                           retry_base=0.1, retry_max=0.5, poll_interval=0.05)
        sim_app = create_app(config)
        url, server, thread = serve(sim_app)
        running.append((sim_app, server, thread))
        keys = sim_app.extensions["issuer_sim"].keys
        org = create_org(kind=OrganisationKind.ISSUER, name=name)
        issuer = admit_issuer(ADMIN, org, code=code, kind=kind, api_base_url=url,
                              message_cert_pem=_pem(keys.message_cert), letter_trust_root_pem=_pem(keys.ca_cert))
        add_product(ADMIN, issuer, code=f"{code}-BID", name=f"{name} 投标保函", minimum_fee="10.00",
                    rate_permille=rate)
    db.session.commit()
    yield {code: sim_app.extensions["issuer_sim"] for (code, *_), (sim_app, _, _) in zip(ISSUERS, running,
                                                                                            strict=True)}
    for sim_app, server, thread in running:
        stop(server, thread)
        sim_app.extensions["issuer_sim"].close()


def _login(page, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(re.compile(r"/account"))


def _wait_for_state(page, url: str, order_no: str, state: str) -> None:
    """Reload My guarantees until the order shows ``state`` (the issuer answers in the background)."""
    deadline = time.monotonic() + WAIT
    selector = f"section[data-order-no='{order_no}'][data-state='{state}']"
    while time.monotonic() < deadline:
        page.goto(url)
        if page.locator(selector).count():
            return
        page.wait_for_timeout(300)
    raise AssertionError(f"order {order_no} did not become {state}: {page.locator('main').inner_text()[:800]}")


def _order() -> GuaranteeOrder:
    db.session.rollback()  # a fresh read; ends the transaction so the server threads can write (SQLite)
    order = db.session.scalar(select(GuaranteeOrder).order_by(GuaranteeOrder.id.desc()).limit(1))
    db.session.rollback()
    return order


def test_bidder_buys_and_binds_a_letter_and_a_visitor_verifies_it(live_server, browser_context, issuers,  # noqa: F811
                                                                   tender, create_bidder, tmp_path):  # noqa: F811
    org, person, _ = create_bidder(name="青岛海岸建设工程有限公司")
    lot = tender.lots[0]
    tender_id, lot_id = tender.id, lot.id
    db.session.commit()

    page = browser_context("bidder").new_page()
    _login(page, live_server, person.email)
    page.goto(f"{live_server}/tenders/{tender_id}/lots/{lot_id}/guarantee")
    offers = page.locator("[data-section=offers] .offer")
    assert offers.count() == 2
    assert {offers.nth(i).get_attribute("data-issuer") for i in range(2)} == {"QDBANK", "HXINS"}
    boxes = [offers.nth(i).bounding_box() for i in range(2)]
    assert abs(boxes[0]["y"] - boxes[1]["y"]) < 2 and boxes[0]["x"] != boxes[1]["x"]  # side by side
    premiums = {offers.nth(i).get_attribute("data-issuer"): offers.nth(i).locator("[data-premium]")
                .get_attribute("data-premium") for i in range(2)}
    assert premiums == {"QDBANK": "20.00", "HXINS": "16.00"}  # 20 000.00 CNY × 1.0‰ and × 0.8‰
    assert "random" in page.locator("[data-note=neutral]").inner_text() or "随机" in page.content()
    shot(page, "guarantee-01-offers-side-by-side")

    page.locator(".offer[data-issuer=HXINS] input[name=product_id]").check()
    page.locator("input[name=guarantee_type][value=plain]").check()
    page.click("#apply button[type=submit]")
    page.wait_for_selector("[data-section=order]")
    order_no = page.locator("[data-section=order]").get_attribute("data-order-no")
    shot(page, "guarantee-02-applied")

    mine = f"{live_server}/my/guarantees"
    _wait_for_state(page, mine, order_no, OrderState.ISSUED.value)
    card = page.locator(f"section[data-order-no='{order_no}']")
    codes = card.locator("dd code")
    guarantee_no, code = codes.nth(0).inner_text(), codes.nth(1).inner_text()
    assert guarantee_no.startswith("HXINS-") and len(code) == 10
    order = _order()
    assert (order.order_no, order.guarantee_no, order.verification_code) == (order_no, guarantee_no, code)
    assert order.letter_sha256 == issuers["HXINS"].store.letter(guarantee_no)["sha256"]
    shot(page, "guarantee-03-letter-issued")

    with page.expect_download() as download:
        card.locator("a", has_text=re.compile(r"\.pdf$")).first.click()
    letter = Path(tmp_path / "letter.pdf")
    download.value.save_as(letter)
    assert letter.read_bytes().startswith(b"%PDF-")

    card.locator("button", has_text=re.compile("Bind|关联")).click()
    _wait_for_state(page, mine, order_no, OrderState.BOUND_TO_BID.value)
    shot(page, "guarantee-04-bound")

    visitor = browser_context("visitor").new_page()
    visitor.goto(f"{live_server}/guarantees/verify")
    visitor.fill("#no", guarantee_no)
    visitor.fill("#code", code)
    visitor.check("#confirm")  # also ask the issuer's registry, over HTTP
    visitor.click("#by-number button[type=submit]")
    result = visitor.locator("[data-section=result]")
    result.wait_for()
    assert result.get_attribute("data-valid") == "true", result.inner_text()
    assert "华信财产保险(模拟)" in result.inner_text()
    shot(visitor, "guarantee-05-verified-by-number")

    visitor.goto(f"{live_server}/guarantees/verify")
    visitor.set_input_files("#file", str(letter))
    visitor.click("#by-file button[type=submit]")
    result = visitor.locator("[data-section=result]")
    result.wait_for()
    assert result.get_attribute("data-valid") == "true", result.inner_text()
    assert order.letter_sha256 in result.inner_text()
    shot(visitor, "guarantee-06-verified-by-upload")

    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(letter.read_bytes() + b"\n% appended after signing\n")
    visitor.goto(f"{live_server}/guarantees/verify")
    visitor.set_input_files("#file", str(tampered))
    visitor.click("#by-file button[type=submit]")
    result = visitor.locator("[data-section=result]")
    result.wait_for()
    assert result.get_attribute("data-valid") == "false"
    shot(visitor, "guarantee-07-tampered-refused")
