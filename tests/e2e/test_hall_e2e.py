"""Browser test of the opening hall (开标大厅): two bidders and a supervisor in real Chromium.

The hall pages connect to the /hall Socket.IO namespace with the project's own socket.io client. The host
starts the decryption window; bidder A decrypts its bid in its page (its key file read in the browser, the
content key unwrapped with WebCrypto, only that key sent); bidder B's key arrives through the opening
service, as `ebid client decrypt` sends it. Each time the board changes live in all three pages, and no
page shows a price before that bid's decryption. The JS unwrap is also checked against the published
envelope vectors. Screenshots go to test-artifacts/e2e/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from bidding import opening, opening_decrypt, opening_process
from core.db import db
from tests.bidding.conftest import api_as, frozen  # noqa: F401  (fixtures of the kit)
from tests.bidding.opening_support import make_opening_fixture  # noqa: F401  (the make_opening fixture)
from tests.bidding.sealed_support import kit_fixture  # noqa: F401  (the kit fixture)
from tests.e2e.test_publish_flow import (  # noqa: F401  (live_server and browser_context are fixtures)
    CHROMIUM,
    browser_context,
    live_server,
    shot,
)
from tests.factories import PASSWORD

VECTORS = Path(__file__).parents[1] / "crypto" / "vectors"

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium (/usr/bin/chromium) is not "
                                                               "installed: apt-get install chromium")]

JS_UNWRAP_VECTORS = """
async ({env}) => {
  const B = await import('/static/seal/bytes.js');
  const U = await import('/static/seal/unwrap.js');
  const out = {};
  for (const v of env.vectors) {
    const header = B.fromHex(v.header);
    const parts = {};
    for (const role of v.recipients) {
      const key = {scalar: B.fromHex(env.keys[role].private), point: B.fromHex(env.keys[role].public)};
      const got = await U.unwrapKeyPart(header, key);
      parts[role] = [got.role, got.keyMode, B.hex(got.part)];
    }
    let stranger = null;
    try {
      await U.unwrapKeyPart(header, {scalar: B.fromHex(env.keys.signer.private), point: B.fromHex(env.keys.signer.public)});
    } catch (err) { stranger = err.code; }
    const tampered = header.slice();
    tampered[tampered.length - 1] ^= 1;  // the last byte of the last wrapped key
    let broken = null;
    const last = v.recipients[v.recipients.length - 1];
    try {
      await U.unwrapKeyPart(tampered, {scalar: B.fromHex(env.keys[last].private), point: B.fromHex(env.keys[last].public)});
    } catch (err) { broken = err.code; }
    out[v.name] = {parts, stranger, broken};
  }
  return out;
}
"""


@pytest.fixture
def server(request) -> str:
    """The app served from a thread on 127.0.0.1 with CSRF on (test_publish_flow's live_server)."""
    return request.getfixturevalue("live_server")


@pytest.fixture
def browser(request):
    """A function opening a fresh Chromium profile (test_publish_flow's browser_context)."""
    return request.getfixturevalue("browser_context")


def _login(page, server: str, person) -> None:
    page.goto(f"{server}/login")
    page.fill("input[name=email]", person.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(re.compile(r"/account"))


def _pem(private_key) -> bytes:
    return private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())


def test_js_unwrap_reproduces_the_published_key_parts(server, browser):
    env = json.loads((VECTORS / "envelope.json").read_text())
    page = browser("unwrap").new_page()
    page.goto(f"{server}/tenders")
    out = page.evaluate(JS_UNWRAP_VECTORS, {"env": env})
    roles = {"tender": 1, "bidder": 2}
    for v in env["vectors"]:
        expected = {r: [roles[r], v["key_mode"], v["key_parts"][r]] for r in v["recipients"]}
        assert out[v["name"]] == {"parts": expected, "stranger": "not_a_recipient", "broken": "unwrap_failed"}, v["name"]


def test_two_bidders_and_a_supervisor_see_the_board_update_live(server, browser, make_opening, tmp_path):
    o = make_opening(3, mode="bidder", custodians=0)
    a, b, c = o.bidders
    key_file = tmp_path / "bidder-a-decryption-key.pem"
    key_file.write_bytes(_pem(a.own_key))

    pages = {}
    for name, person in (("bidder-a", a.person), ("bidder-b", b.person), ("supervisor", o.supervisor)):
        page = browser(f"hall-{name}").new_page()
        _login(page, server, person)
        page.goto(f"{server}/tenders/{o.tender.id}/hall")
        page.wait_for_selector("#hall-app[data-connected=yes]")
        page.wait_for_selector("[data-board] tr[data-status=pending]")
        pages[name] = page
    for page in pages.values():  # everyone sees the other two arrive
        page.wait_for_function("document.querySelectorAll('[data-presence] li[data-role]').length === 3")
        assert page.locator("[data-board] tr[data-status=pending]").count() == 3
        assert page.locator("[data-price]").all_inner_texts() == ["", "", ""]
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", page.locator("[data-server-clock]").inner_text())
    assert pages["supervisor"].locator("[data-action]").count() == 0  # read-only
    assert pages["supervisor"].locator("[data-read-only]").count() == 0  # a named supervisor agrees on causes
    shot(pages["bidder-a"], "hall-01-bidder-a-checkin")

    opening.start_decryption(o.host_actor, o.tender.id)  # the host's step (its page sends the same action)
    db.session.commit()
    for page in pages.values():
        page.wait_for_selector("#hall-app[data-phase=decrypting]")
        page.wait_for_function("Number(document.querySelector('[data-hall-countdown]').dataset.remaining) > 1700")
    shot(pages["supervisor"], "hall-02-supervisor-decrypting")

    bidder_a = pages["bidder-a"]
    bidder_a.set_input_files("[data-key-file]", str(key_file))
    bidder_a.click(f"[data-decrypt='{o.bid_of(a).public_id}']")
    for page in pages.values():
        row = page.locator(f"[data-board] tr[data-bidder='{a.org.name}'][data-status=decrypted]")
        row.wait_for()
        assert row.locator("[data-price]").inner_text().startswith(o.prices[a.org.id])
        assert page.locator("[data-board] tr[data-status=pending]").count() == 2
        assert page.locator("[data-price]").all_inner_texts().count("") == 2  # the others: no content yet
    shot(bidder_a, "hall-03-bidder-a-decrypted-in-browser")

    key = o.content_key(b)  # bidder B's client (ebid client decrypt) unwraps locally and sends only the key
    opening_decrypt.submit_content_key(b.actor, o.tender.id, o.bid_of(b).public_id, key)
    db.session.commit()
    opening_process.process_pending(o.tender.id)
    for name, page in pages.items():
        page.locator(f"[data-board] tr[data-bidder='{b.org.name}'][data-status=decrypted]").wait_for()
        assert page.locator("[data-board] tr[data-status=decrypted]").count() == 2
        pending = page.locator(f"[data-board] tr[data-bidder='{c.org.name}']")
        assert pending.get_attribute("data-status") == "pending" and pending.locator("[data-price]").inner_text() == ""
        shot(page, f"hall-04-{name}-two-decrypted")
    announcements = pages["supervisor"].locator("[data-announcements] li").all_inner_texts()
    assert announcements and any("30" in text for text in announcements)

    # the opening record (开标记录): the last bid decrypted, the host builds the record in its page, bidder A
    # confirms in its page, and bidder B and the supervisor see the record and A's confirmation arrive live
    host = browser("hall-host").new_page()
    _login(host, server, o.host)
    host.goto(f"{server}/tenders/{o.tender.id}/hall")
    host.wait_for_selector("#hall-app[data-connected=yes]")
    opening_decrypt.submit_content_key(c.actor, o.tender.id, o.bid_of(c).public_id, o.content_key(c))
    db.session.commit()
    opening_process.process_pending(o.tender.id)
    host.wait_for_selector("#hall-app[data-phase=decrypted]")
    host.locator("[data-record-form=build] button").click()
    for name, page in pages.items():
        page.wait_for_selector("[data-record-panel][data-status=confirming]")
        assert page.locator("[data-record-row]").count() == 3
        assert (page.locator("[data-record-form=confirm]").count() == 1) is name.startswith("bidder")
    assert o.prices[a.org.id] in pages["supervisor"].locator(f"[data-record-row='{a.org.uscc}']").inner_text()
    shot(pages["bidder-a"], "hall-05-bidder-a-record")
    bidder_a.locator("[data-record-form=confirm] button").click()
    for page in pages.values():
        page.locator(f"[data-record-responses] li[data-uscc='{a.org.uscc}'][data-response=confirmed]").wait_for()
    assert bidder_a.locator("[data-record-form]").count() == 0  # a confirmation is final
    assert pages["bidder-b"].locator("[data-record-form=confirm]").count() == 1
    shot(pages["supervisor"], "hall-06-supervisor-sees-the-confirmation")
