"""The opening hall page: who gets it, what it is given, where it is linked from, and no external script."""

from __future__ import annotations

import json
import re

import pytest

from core.clock import clock
from core.db import db
from tests.bidding.conftest import api_as, frozen  # noqa: F401  (fixtures of the kit)
from tests.bidding.hall_support import build_hall, login_client, outsider
from tests.bidding.sealed_support import kit_fixture  # noqa: F401  (the kit fixture)


def _config(html: str) -> dict:
    raw = re.search(r'data-config="([^"]*)"', html).group(1)
    return json.loads(raw.replace("&#34;", '"').replace("&quot;", '"').replace("&amp;", "&"))


def test_a_bidder_gets_the_hall_with_its_own_bids_and_the_vendored_socket_client(app, kit):
    hall = build_hall(kit, clock)
    bidder = hall.bidders[0]
    response = login_client(app, bidder.person).get(f"/tenders/{hall.tender_id}/hall")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    config = _config(html)
    assert config["role"] == "bidder" and config["organisationId"] == bidder.org.id
    assert [b["lot"] for b in config["ownBids"]] == ["L1"]
    assert config["apiBase"] == f"/api/opening/tenders/{hall.tender_id}"
    assert "/static/vendor/socket.io/socket.io.min.js" in html and "/static/hall/hall.js" in html
    assert not re.search(r'src="(https?:)?//', html)  # everything served by the platform itself
    assert 'data-decrypt="' in html and 'data-action="start_decryption"' not in html


def test_the_host_gets_the_steps_and_the_supervisor_a_read_only_hall(app, kit):
    hall = build_hall(kit, clock)
    host_html = login_client(app, hall.host).get(f"/tenders/{hall.tender_id}/hall").get_data(as_text=True)
    assert 'data-action="start_decryption"' in host_html and "data-failure-form" in host_html
    supervisor_html = login_client(app, hall.supervisor).get(f"/tenders/{hall.tender_id}/hall").get_data(as_text=True)
    assert 'data-action="' not in supervisor_html and "data-failure-form" in supervisor_html
    assert _config(supervisor_html)["actions"] == ["decide_failure"]


def test_an_outsider_is_refused_the_hall(app, kit):
    hall = build_hall(kit, clock)
    assert login_client(app, outsider(kit)).get(f"/tenders/{hall.tender_id}/hall").status_code == 403
    assert app.test_client().get(f"/tenders/{hall.tender_id}/hall").status_code in (302, 401)


@pytest.mark.parametrize("closed", [False, True])
def test_detail_and_my_bids_link_to_the_hall_from_the_deadline_on(app, kit, closed):
    hall = build_hall(kit, clock, close=closed)
    client = login_client(app, hall.bidders[0].person)
    detail = client.get(f"/tenders/{hall.tender_id}").get_data(as_text=True)
    mine = client.get("/my/bids").get_data(as_text=True)
    link = f'href="/tenders/{hall.tender_id}/hall'
    assert (link in detail) is closed and (link in mine) is closed


def test_the_vendored_socket_io_client_is_served_with_its_licence(app):
    client = app.test_client()
    script = client.get("/static/vendor/socket.io/socket.io.min.js")
    assert script.status_code == 200 and b"Socket.IO v4.8.4" in script.data
    assert client.get("/static/vendor/socket.io/LICENSE").status_code == 200
    db.session.rollback()


def test_the_hall_page_carries_the_one_record_part_hidden_until_there_is_something_to_show(app, kit):
    hall = build_hall(kit, clock)
    html = login_client(app, hall.host).get(f"/tenders/{hall.tender_id}/hall").get_data(as_text=True)
    assert html.count("data-record-panel") == 1 and "/static/hall/record.js" in html
    part = re.search(r"<section[^>]*data-record-panel[^>]*>", html).group(0)
    assert part.endswith("hidden>")  # check-in: no record, nothing to build yet
    assert 'data-record-form="build"' not in html
    fragment = login_client(app, hall.bidders[0].person).get(f"/tenders/{hall.tender_id}/hall/record")
    assert fragment.status_code == 200 and "data-record-panel" in fragment.get_data(as_text=True)
    assert "<html" not in fragment.get_data(as_text=True)  # the part alone, for record.js to swap in
