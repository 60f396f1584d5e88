"""The opening record in the hall page: who sees which form, and the whole record driven from the page's calls."""

from __future__ import annotations

import base64

import pytest

from bidding.hall_record import panel_actions
from core.identity.ca import load_ca_certificate
from ebid.client.record import sign_record
from tests.bidding.conftest import api_as, frozen  # noqa: F401  (fixtures of the kit)
from tests.bidding.hall_support import (  # noqa: F401  (clean_presence is a fixture)
    clean_presence,
    events,
    hall_client,
    join,
    login_client,
    outsider,
)
from tests.bidding.opening_support import make_opening_fixture  # noqa: F401  (the make_opening fixture)
from tests.bidding.record_support import decrypted_fixture  # noqa: F401  (the decrypted fixture)
from tests.bidding.sealed_support import kit_fixture  # noqa: F401  (the kit fixture)

A, B = "91000000000000000A", "91000000000000000B"


def _record(status="confirming", responses=(), my_field=None, **signed):
    return {"status": status, "rows": [{"uscc": A}, {"uscc": B}], "my_field": my_field,
            "responses": [{"uscc": u, "kind": k} for u, k in responses],
            "host_signed_at": signed.get("host"), "supervisor_signed_at": signed.get("supervisor")}


NO = dict.fromkeys(("show", "build", "confirm", "object", "answer", "sign", "signed_pdf"), False)
PANEL = [
    # phase, role, record, acting uscc -> the keys that are True
    ("decrypting", "host", None, None, set()),
    ("decrypted", "host", None, None, {"show", "build"}),
    ("record", "host", None, None, {"show", "build"}),
    ("decrypted", "supervisor", None, None, set()),
    ("decrypted", "bidder", None, A, set()),
    ("record", "bidder", _record(), A, {"show", "confirm", "object"}),
    ("record", "bidder", _record(responses=[(A, "objected")]), A, {"show", "object"}),
    ("record", "bidder", _record(responses=[(A, "confirmed")]), A, {"show"}),
    ("record", "bidder", _record(responses=[(A, "confirmed")]), B, {"show", "confirm", "object"}),
    ("record", "bidder", _record(), "91000000000000000C", {"show"}),  # not in the record
    ("record", "bidder", _record("answering"), A, {"show"}),
    ("record", "host", _record(), None, {"show", "answer"}),
    ("record", "host", _record("answering"), None, {"show", "answer"}),
    ("record", "host", _record("signing", my_field="Host"), None, {"show", "sign"}),
    ("record", "host", _record("signing", my_field="Host", host="t"), None, {"show"}),
    ("record", "supervisor", _record("signing", my_field="Supervisor", host="t"), None, {"show", "sign"}),
    ("record", "supervisor", _record("signing"), None, {"show"}),  # a supervisor not named for this opening
    ("record", "staff", _record("signing"), None, {"show"}),
    ("closed", "bidder", _record("published", host="t", supervisor="t"), A, {"show", "signed_pdf"}),
]


@pytest.mark.parametrize("phase, role, record, uscc, true", PANEL)
def test_what_the_record_part_offers(phase, role, record, uscc, true):
    assert panel_actions(phase=phase, role=role, record=record, acting_uscc=uscc) == {**NO, **dict.fromkeys(true, True)}


def _part(client, tender_id: int) -> str:
    response = client.get(f"/tenders/{tender_id}/hall/record")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _sign(client, tender_id: int, signer) -> dict:
    download = client.get(f"/tenders/{tender_id}/hall/record/revision.pdf")
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    revision = client.get(f"/api/opening/tenders/{tender_id}/opening-record").get_json()
    assert download.headers["X-Record-SHA256"] == revision["pdf_sha256"]
    field = revision["my_field"]
    signed = sign_record(download.data, field, signer.key, signer.cert, [load_ca_certificate()])
    response = client.post(f"/api/opening/tenders/{tender_id}/opening-record/revision",
                           json={"pdf": base64.b64encode(signed).decode()})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.mark.usefixtures("clean_presence")
def test_the_record_from_the_hall_page_build_confirm_object_answer_sign(app, kit, decrypted):
    d, tid = decrypted, decrypted.tender_id
    host, supervisor = login_client(app, d.o.host), login_client(app, d.o.supervisor)
    bidders = [login_client(app, b.person) for b in d.o.bidders]
    watcher = hall_client(app, d.o.supervisor)
    assert join(watcher, tid)["ok"]

    host_page = host.get(f"/tenders/{tid}/hall").get_data(as_text=True)
    assert 'data-record-form="build"' in host_page and "/static/hall/record.js" in host_page
    bidder_part = _part(bidders[0], tid)
    assert "data-record-panel" in bidder_part and " hidden>" in bidder_part and "data-record-form" not in bidder_part
    assert login_client(app, outsider(kit)).get(f"/tenders/{tid}/hall/record").status_code == 403

    api = f"/api/opening/tenders/{tid}/opening-record"
    assert bidders[0].post(api, json={}).status_code == 403
    assert host.post(api, json={"window_minutes": 10}).status_code == 201
    assert [e["event"] for e in events(watcher, "hall.record")] == ["built"]  # the pages reload their part

    part = _part(bidders[0], tid)
    assert part.count("data-record-row=") == 3 and 'data-record-status="confirming"' in part
    assert 'data-record-form="confirm"' in part and 'data-record-form="object"' in part
    assert 'data-record-form="answer"' not in part and 'data-record-form="build"' not in part
    sup_part = _part(supervisor, tid)
    assert "data-record-form" not in sup_part and sup_part.count("data-record-row=") == 3

    assert bidders[0].post(f"{api}/confirm", json={}).status_code == 200
    part = _part(bidders[0], tid)
    assert 'data-response="confirmed"' in part and "data-record-form" not in part
    assert 'data-record-form="confirm"' in _part(bidders[1], tid)
    objected = bidders[2].post(f"{api}/objections", json={
        "text": "CA 服务中断", "attachment": {"name": "ca.txt", "content": base64.b64encode(b"outage").decode()}})
    assert objected.status_code == 201
    objection_id = objected.get_json()["id"]
    part = _part(bidders[2], tid)
    assert 'data-record-form="object"' in part and 'data-record-form="confirm"' not in part  # may add more
    assert "CA 服务中断" in part and "ca.txt" in part
    assert f'data-objection-id="{objection_id}"' in _part(host, tid)
    assert bidders[1].post(f"{api}/confirm", json={}).status_code == 200  # all answered: the window closes

    assert 'data-record-status="answering"' in _part(bidders[1], tid)
    assert host.post(f"{api}/objections/{objection_id}/answer", json={"text": "已记录"}).status_code == 200
    host_part = _part(host, tid)
    assert 'data-record-status="signing"' in host_part and "data-record-signer" in host_part
    assert f"ebid client record sign --tender {tid}" in host_part and "已记录" in host_part
    assert "data-record-signer" not in _part(bidders[0], tid)
    assert bidders[0].get(f"/tenders/{tid}/hall/record/revision.pdf").status_code == 403
    ca = bidders[0].get(f"/tenders/{tid}/hall/record/platform-ca.pem")
    assert ca.status_code == 200 and ca.data.startswith(b"-----BEGIN CERTIFICATE-----")

    assert _sign(host, tid, d.host)["status"] == "signing"
    assert "data-record-signer" not in _part(host, tid)
    assert 'data-signed="yes"' in _part(supervisor, tid) and "data-record-signer" in _part(supervisor, tid)
    assert _sign(supervisor, tid, d.supervisor)["status"] == "published"
    part = _part(bidders[2], tid)
    assert "data-record-pdf" in part and part.count('data-signed="yes"') == 2
    assert [e["event"] for e in events(watcher, "hall.record")][-1] == "published"
