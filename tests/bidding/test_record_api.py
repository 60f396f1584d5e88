"""The opening record's JSON API: build, confirm, object with an attachment, answer, sign, download."""

from __future__ import annotations

import base64

import pytest

from bidding.record_models import RecordStatus
from core.identity.ca import load_ca_certificate
from ebid.client.errors import ClientError
from ebid.client.record import sign_record
from tests.bidding.opening_support import make_opening_fixture  # noqa: F401
from tests.bidding.record_support import decrypted_fixture  # noqa: F401
from tests.bidding.sealed_support import kit_fixture  # noqa: F401


def _sign(client, signer):
    revision = client.get(f"/api/opening/tenders/{signer[0]}/opening-record/revision").get_json()
    pdf = sign_record(base64.b64decode(revision["pdf"]), revision["my_field"], signer[1].key, signer[1].cert,
                      [load_ca_certificate()])
    return client.post(f"/api/opening/tenders/{signer[0]}/opening-record/revision",
                       json={"pdf": base64.b64encode(pdf).decode()})


def test_the_whole_record_over_the_api(decrypted, api_as, client):
    d = decrypted
    tid = d.tender_id
    host, supervisor = api_as(d.o.host), api_as(d.o.supervisor)
    bidders = [api_as(b.person) for b in d.o.bidders]
    assert client.get(f"/api/opening/tenders/{tid}/opening-record").status_code == 404
    response = bidders[0].post(f"/api/opening/tenders/{tid}/opening-record", json={})
    assert response.status_code == 403
    response = host.post(f"/api/opening/tenders/{tid}/opening-record", json={"window_minutes": 10})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["status"] == "confirming" and len(response.get_json()["rows"]) == 3
    assert bidders[0].post(f"/api/opening/tenders/{tid}/opening-record/confirm").status_code == 200
    assert bidders[1].post(f"/api/opening/tenders/{tid}/opening-record/confirm").status_code == 200
    response = bidders[2].post(f"/api/opening/tenders/{tid}/opening-record/objections", json={
        "text": "The CA was down.", "attachment": {"name": "notice.txt", "content": base64.b64encode(b"CA").decode()}})
    assert response.status_code == 201, response.get_json()
    objection = response.get_json()
    assert objection["attachment"]["size"] == 2
    view = client.get(f"/api/opening/tenders/{tid}/opening-record").get_json()
    assert view["status"] == "answering" and view["pdf_sha256"] is None
    response = host.post(f"/api/opening/tenders/{tid}/opening-record/objections/{objection['id']}/answer",
                         json={"text": "Recorded; the supervisor checks the CA's log."})
    assert response.status_code == 200, response.get_json()
    assert client.get(f"/api/opening/tenders/{tid}/opening-record.pdf").status_code == 404  # not yet signed
    response = _sign(supervisor, (tid, d.supervisor))
    assert response.status_code == 200, response.get_json()
    response = _sign(host, (tid, d.host))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == RecordStatus.PUBLISHED.value
    download = client.get(f"/api/opening/tenders/{tid}/opening-record.pdf")
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    assert download.data.startswith(b"%PDF")
    with pytest.raises(ClientError, match="already signed"):
        _sign(host, (tid, d.host))
