"""The tender JSON API: shapes, status codes, the one error shape, the OpenAPI document."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import pytest

from bidding.models import Tender
from core.db import db
from core.identity.models import OrganisationKind
from tests.bidding.conftest import T0, actions, snapshot

DAY = timedelta(days=1)


def iso(value):
    return value.isoformat()


def assert_error_shape(response, status, code=None):
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert set(body) == {"code", "message", "fields"}, body
    assert isinstance(body["message"], str) and body["message"]
    assert all(isinstance(v, list) and all(isinstance(m, str) for m in v) for v in body["fields"].values())
    if code:
        assert body["code"] == code, body
    return body


@pytest.fixture
def tenderer(create_org, create_person):
    org = create_org(kind=OrganisationKind.TENDERER)
    person = create_person(roles=("tenderer",), organisation=org)
    db.session.commit()
    return org, person


def draft_body(**overrides):
    body = {"title": "Harbour dredging", "regime": "works", "category": "works", "estimated_price": "2000000.00",
            "region": "370200", "documents_until_at": iso(T0 + 10 * DAY), "question_deadline_at": iso(T0 + 15 * DAY),
            "bid_deadline_at": "2026-03-27T09:00:00+08:00",
            "lots": [{"title": "Inner harbour", "estimated_price": "2000000", "bond_amount": "40000.00"}]}
    body.update(overrides)
    return body


def test_create_upload_publish_through_the_api(frozen, tenderer, api_as):
    org, person = tenderer
    api = api_as(person)
    response = api.post("/api/tenders", json=draft_body())
    assert response.status_code == 201, response.get_json()
    tender = response.get_json()
    assert tender["status"] == "draft" and tender["version"] == 1 and tender["tenderer"]["id"] == org.id
    assert tender["bid_deadline_at"] == "2026-03-27T01:00:00+00:00" == tender["opening_at"]
    assert tender["lots"][0]["bond_amount"] == "40000.00"

    content = b"%PDF-1.7 tender documents"
    upload = api.post(f"/api/tenders/{tender['id']}/documents", content_type="multipart/form-data",
                      data={"file": (io.BytesIO(content), "zbwj.pdf"), "kind": "biddingDocuments"})
    assert upload.status_code == 201, upload.get_json()
    assert upload.get_json()["sha256"] == hashlib.sha256(content).hexdigest()
    assert upload.get_json()["published_at"] is None

    missing = api.post(f"/api/tenders/{tender['id']}/publish", json={})
    assert "version" in assert_error_shape(missing, 422, "validation_failed")["fields"]
    published = api.post(f"/api/tenders/{tender['id']}/publish", json={}, headers={"If-Match": '"1"'})
    assert published.status_code == 200, published.get_json()
    body = published.get_json()
    assert body["status"] == "published" and body["rules_version"] == "cn-2019.1" and body["version"] == 2
    assert body["documents"][0]["published_at"] == "2026-03-02T01:00:00+00:00"


def test_rule_violations_name_the_fields(frozen, tenderer, api_as):
    api = api_as(tenderer[1])
    tender_id = api.post("/api/tenders", json=draft_body(bid_deadline_at=iso(T0 + 19 * DAY))).get_json()["id"]
    body = assert_error_shape(api.post(f"/api/tenders/{tender_id}/publish", json={"version": 1}), 422)
    assert set(body["fields"]) == {"bid_deadline_at", "documents"}
    assert "(on or after 2026-03-22 09:00 (UTC+08:00))" in body["fields"]["bid_deadline_at"][0]
    bond = assert_error_shape(api.post("/api/tenders", json=draft_body(lots=[
        {"title": "L", "estimated_price": "100000", "bond_amount": "2000.01"}])), 422, "guarantee_above_rate")
    assert list(bond["fields"]) == ["lots.0.bond_amount"]


def test_schema_errors_have_the_one_shape(frozen, tenderer, api_as):
    api = api_as(tenderer[1])
    before = snapshot()
    body = assert_error_shape(api.post("/api/tenders", json=draft_body(
        regime="other", bid_deadline_at="2026-03-27T09:00:00", lots=[{"estimated_price": "x"}])), 422,
        "validation_failed")
    assert {"regime", "bid_deadline_at", "lots.0.title", "lots.0.estimated_price"} <= set(body["fields"])
    assert "UTC offset" in body["fields"]["bid_deadline_at"][0]
    assert_error_shape(api.get("/api/tenders?page=0"), 422, "validation_failed")
    assert_error_shape(api.post("/api/tenders", data="{", content_type="application/json"), 400)
    no_file = api.post("/api/tenders/1/documents", content_type="multipart/form-data", data={"kind": "x"})
    assert "file" in assert_error_shape(no_file, 422, "validation_failed")["fields"]
    assert_error_shape(api.get("/api/nowhere"), 404)
    assert_error_shape(api.put("/api/tenders"), 405)
    assert_error_shape(api.get("/api/tenders/999"), 404, "not_found")
    assert snapshot() == before


def test_authentication_and_membership(frozen, app, tenderer, create_org, create_person, api_as, create_tender):
    anonymous = app.test_client()
    assert_error_shape(anonymous.post("/api/tenders", json=draft_body()), 401, "not_authenticated")
    org, person = tenderer
    other = create_org(kind=OrganisationKind.TENDERER)
    db.session.commit()
    body = assert_error_shape(api_as(person).post("/api/tenders", json=draft_body(organisation_id=other.id)), 403,
                              "not_a_member")
    assert other.name in body["message"]
    tender = create_tender()
    db.session.commit()
    stranger = create_person(roles=("tenderer",), organisation=org)
    # a draft of another organisation does not exist for outsiders
    assert_error_shape(api_as(stranger).get(f"/api/tenders/{tender.id}"), 404)
    assert_error_shape(api_as(stranger).patch(f"/api/tenders/{tender.id}", json={"version": 1, "title": "x"}), 404)


def test_patch_draft_and_refuse_published(frozen, create_tender, api_as):
    tender = create_tender()
    db.session.commit()
    api = api_as(tender.created_by)
    response = api.patch(f"/api/tenders/{tender.id}", json={"version": 1, "title": "Renamed"})
    assert response.status_code == 200 and response.get_json()["title"] == "Renamed"
    stale = api.patch(f"/api/tenders/{tender.id}", json={"version": 1, "title": "Again"})
    assert_error_shape(stale, 409, "conflict")
    assert actions(tender.id)[-1] == "tender.update.conflict"
    api.post(f"/api/tenders/{tender.id}/publish", json={"version": 2})
    refused = api.patch(f"/api/tenders/{tender.id}", json={"version": 3, "title": "After"})
    assert "amendment" in assert_error_shape(refused, 422, "use_amendment")["message"]


def test_search_filters_and_paginates_newest_first(frozen, create_tender, client):
    for i in range(5):
        create_tender(publish=True, title=f"Road section {i}")
        frozen.travel(timedelta(minutes=1))
    create_tender(publish=True, title="Bridge repair", description="Steel bridge over the river", category="works")
    create_tender(title="Secret draft road")
    db.session.commit()
    page = client.get("/api/tenders?per_page=2&page=1").get_json()
    assert page["total"] == 6 and page["pages"] == 3
    assert [t["title"] for t in page["items"]] == ["Bridge repair", "Road section 4"]
    second = client.get("/api/tenders?per_page=2&page=2").get_json()
    assert [t["title"] for t in second["items"]] == ["Road section 3", "Road section 2"]
    assert [t["title"] for t in client.get("/api/tenders?q=river").get_json()["items"]] == ["Bridge repair"]
    assert client.get("/api/tenders?q=road").get_json()["total"] == 5  # the draft stays hidden
    assert client.get("/api/tenders?q=100%25").get_json()["total"] == 0
    assert client.get("/api/tenders?status=draft").get_json()["total"] == 0
    code = db.session.query(Tender.code).filter(Tender.title == "Road section 2").scalar()
    assert [t["title"] for t in client.get(f"/api/tenders?q={code}").get_json()["items"]] == ["Road section 2"]


def test_questions_answers_and_objections(frozen, create_tender, create_bidder, api_as):
    tender = create_tender(publish=True)
    person, bidder = create_bidder()
    db.session.commit()
    staff_api, bidder_api = api_as(tender.created_by), api_as(person)
    asked = bidder_api.post(f"/api/tenders/{tender.id}/questions", json={"text": "Is a site visit required?"})
    assert asked.status_code == 201
    assert staff_api.get(f"/api/tenders/{tender.id}/questions?pending=true").get_json()[0]["id"] == \
        asked.get_json()["id"]
    assert_error_shape(bidder_api.get(f"/api/tenders/{tender.id}/questions?pending=true"), 403)
    answered = staff_api.post(f"/api/questions/{asked.get_json()['id']}/answer", json={"answer": "No."})
    assert answered.status_code == 200
    public = bidder_api.get(f"/api/tenders/{tender.id}/questions").get_json()
    assert [(q["text"], q["answer"]) for q in public] == [("Is a site visit required?", "No.")]
    assert not {"asker_id", "asker_organisation_id", "organisation_id"} & set(public[0])

    objection = bidder_api.post(f"/api/tenders/{tender.id}/objections", json={"text": "Brand named in spec."})
    assert objection.status_code == 201
    assert objection.get_json()["answer_due_at"] == "2026-03-05T01:00:00+00:00"
    assert bidder_api.get(f"/api/tenders/{tender.id}").get_json()["is_suspended"] is True
    assert len(staff_api.get(f"/api/tenders/{tender.id}/objections").get_json()) == 1
    assert len(bidder_api.get(f"/api/tenders/{tender.id}/objections").get_json()) == 1
    answer = staff_api.post(f"/api/objections/{objection.get_json()['id']}/answer", json={"answer": "Removed."})
    assert answer.get_json()["status"] == "answered"
    assert bidder_api.get(f"/api/tenders/{tender.id}").get_json()["is_suspended"] is False


def test_download_records_and_amendment_notifies(frozen, create_tender, create_bidder, api_as):
    tender = create_tender(publish=True)
    person, bidder = create_bidder()
    db.session.commit()
    doc = tender.documents[0]
    new_deadline = tender.bid_deadline_at + 5 * DAY
    response = api_as(person).get(f"/api/documents/{doc.id}")
    assert response.status_code == 200 and response.data == b"tender documents 0"
    assert response.headers["X-Content-SHA256"] == doc.sha256
    amended = api_as(tender.created_by).post(f"/api/tenders/{tender.id}/amendments", json={
        "summary": "Deadline postponed", "affects_bids": True, "version": tender.version,
        "bid_deadline_at": iso(new_deadline)})
    assert amended.status_code == 201, amended.get_json()
    assert amended.get_json()["number"] == 1
    assert amended.get_json()["changes"]["bid_deadline_at"][1] == iso(new_deadline)
    assert amended.get_json()["new_deadline_at"] == iso(new_deadline)
    listed = api_as(person).get(f"/api/tenders/{tender.id}/amendments").get_json()
    assert [a["summary"] for a in listed] == ["Deadline postponed"]


def test_cancel(frozen, create_tender, api_as):
    tender = create_tender(publish=True)
    db.session.commit()
    api = api_as(tender.created_by)
    assert_error_shape(api.post(f"/api/tenders/{tender.id}/cancel", json={"reason": ""}), 422)
    response = api.post(f"/api/tenders/{tender.id}/cancel", json={"reason": "Funding withdrawn"})
    assert response.get_json()["status"] == "cancelled"
    assert response.get_json()["cancel_reason"] == "Funding withdrawn"


def test_openapi_document_lists_the_paths(client):
    doc = client.get("/api/openapi.json").get_json()
    assert doc["info"]["title"] == "ebid API"
    for path in ("/api/tenders", "/api/tenders/{tender_id}", "/api/tenders/{tender_id}/publish",
                 "/api/tenders/{tender_id}/amendments", "/api/tenders/{tender_id}/questions",
                 "/api/questions/{question_id}/answer", "/api/tenders/{tender_id}/objections",
                 "/api/objections/{objection_id}/answer", "/api/tenders/{tender_id}/cancel",
                 "/api/tenders/{tender_id}/documents"):
        assert path in doc["paths"], path
    assert set(doc["components"]["schemas"]["ApiError"]["properties"]) == {"code", "message", "fields"}
    assert "patch" in doc["paths"]["/api/tenders/{tender_id}"]


def test_lot_envelope_limit_is_set_and_shown_through_the_api(frozen, tenderer, api_as):
    api = api_as(tenderer[1])
    body = draft_body(lots=[{"title": "Quay wall", "estimated_price": "2000000", "max_bid_bytes": 50 << 20}])
    created = api.post("/api/tenders", json=body)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["lots"][0]["max_bid_bytes"] == 50 << 20
    too_small = api.post("/api/tenders", json=draft_body(lots=[
        {"title": "Quay wall", "estimated_price": "2000000", "max_bid_bytes": 10}]))
    assert "lots.0.max_bid_bytes" in assert_error_shape(too_small, 422)["fields"]
