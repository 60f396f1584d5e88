"""The client's opening commands (check-in, decrypt, release-share) against the API through the test client."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bidding import opening
from bidding.opening_models import BidOpeningStatus, DecryptMethod
from core.clock import clock
from core.db import db
from ebid.client import opening as client_opening
from ebid.client.errors import ClientError
from tests.bidding.opening_support import make_opening_fixture  # noqa: F401
from tests.bidding.sealed_support import kit_fixture  # noqa: F401


class FlaskApi:
    """The client's Api interface over a Flask test client (raises ClientError like the real one)."""

    def __init__(self, client):
        self.client = client

    @staticmethod
    def _params(params):
        return {k: v for k, v in (params or {}).items() if v is not None}

    def _answer(self, response):
        data = response.get_json()
        if response.status_code >= 400:
            raise ClientError(data["message"], code=data["code"], status=response.status_code)
        return data

    def get(self, path, params=None):
        return self._answer(self.client.get(path, query_string=self._params(params)))

    def post(self, path, json_body=None, params=None):
        return self._answer(self.client.post(path, json=json_body, query_string=self._params(params)))


def test_client_checks_in_decrypts_and_custodians_release(make_opening, api_as):
    o = make_opening(3)
    apis = [FlaskApi(b.client) for b in o.bidders]
    for api in apis:
        assert client_opening.check_in(api, o.tender.id)["organisation"]
    host = FlaskApi(api_as(o.host))
    assert host.post(f"/api/opening/tenders/{o.tender.id}/start", {})["phase"] == "decrypting"
    with pytest.raises(ClientError) as info:  # a key the bid was not sealed for
        client_opening.decrypt(apis[0], o.tender.id, o.bidders[1].own_key)
    assert info.value.code == "not_a_recipient"
    for b, api in list(zip(o.bidders, apis, strict=True))[:2]:
        assert [r["status"] for r in client_opening.decrypt(api, o.tender.id, b.own_key)] == ["decrypted"]
    clock.travel(timedelta(minutes=31))
    for n in (0, 1):
        person, key = o.kit.custodians[o.tender.id][n]
        result = client_opening.release_share(FlaskApi(api_as(person)), o.tender.id, key)
    assert result["key_rebuilt"] is True
    db.session.expire_all()
    row = o.row_of(o.bidders[2])
    assert (row.status, row.method) == (BidOpeningStatus.DECRYPTED, DecryptMethod.CUSTODIANS)
    state = host.get(f"/api/opening/tenders/{o.tender.id}")
    assert {r["status"] for r in state["board"]} == {"decrypted"} and state["phase"] == "decrypted"
    assert host.get(f"/api/opening/tenders/{o.tender.id}/handoff")["ok"] is True
    assert opening.get_session(o.tender.id).key_rebuilt_at is not None


def test_wrong_share_through_the_api_is_refused_and_recorded(make_opening, api_as):
    o = make_opening(3, mode="custodians")
    FlaskApi(api_as(o.host)).post(f"/api/opening/tenders/{o.tender.id}/start", {})
    person, _key = o.kit.custodians[o.tender.id][0]
    response = api_as(person).post(f"/api/opening/tenders/{o.tender.id}/share", json={"share": "AAAA"})
    assert response.status_code == 422 and response.get_json()["code"] == "wrong_share"
    assert "not your share" in response.get_json()["message"]
    state = FlaskApi(api_as(o.supervisor)).get(f"/api/opening/tenders/{o.tender.id}")
    assert any(a["kind"] == "refused" for a in state["announcements"])
