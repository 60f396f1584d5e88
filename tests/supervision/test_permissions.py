"""The supervisor's permission matrix over every endpoint of the site: a supervisor reads everything and
changes nothing but a tender's suspension, complaint decisions (and the room's suspension, the same act in
the scoring room). Every write endpoint is tried with the supervisor's session and with an API token; the
database must be byte-for-byte the same afterwards, except for the allowed acts."""

from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import select, text

from core.db import db
from evaluation import award as awards
from supervision import services
from tests.bidding.hall_support import login_client
from tests.evaluation.results_support import complete, sign_all
from tests.evaluation.room_support import *  # noqa: F403  (make_room and the fixtures it needs)

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# what a supervisor may change (the acts themselves are tested in test_supervision_services.py)
ALLOWED = {"supervision.suspend", "supervision.resume", "supervision.accept", "supervision.decide",
           "supervision.screens", "identity.logout", "identity.login",
           "identity_api.challenge"}  # a certificate-login challenge: part of logging in, like the login form
# rows that reading or being refused may touch: the trail (refusals are audited), the hall's
# announcements (a refused key or share is announced, like the trail), notifications, the token's last
# use, the person's last login
VOLATILE = {"audit_events", "audit_anchors", "opening_announcements", "notifications", "api_tokens", "persons"}


def snapshot() -> str:
    digest = hashlib.sha256()
    for table in db.metadata.sorted_tables:
        if table.name in VOLATILE:
            continue
        rows = db.session.execute(select(table).order_by(*table.primary_key.columns)).all()
        digest.update(table.name.encode())
        for row in rows:
            digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


def _value(name: str, ids: dict) -> str:
    return str(ids.get(name, 1))


def _url(rule, ids: dict) -> str:
    url = rule.rule
    for arg in rule.arguments:
        url = re.sub(rf"<(?:[^:<>]+:)?{arg}>", _value(arg, ids), url)
    return url


@pytest.fixture
def world(make_room, certify):
    r = make_room(experts=5, bidders=4)
    complete(r)
    sign_all(r, certify)
    awards.start_publicity(r.host_actor, r.tender_id)
    db.session.commit()
    objection = awards.raise_objection(r.bidder_actor(1), r.tender_id, "异议")
    db.session.commit()
    awards.answer_objection(r.host_actor, r.tender_id, objection.id, "答复")
    db.session.commit()
    complaint = services.file_complaint(r.bidder_actor(1), r.tender_id, "result", objection.id, "投诉")
    db.session.commit()
    ids = {"tender_id": r.tender_id, "evaluation_id": r.evaluation_id, "bid_opening_id": r.bid_ids[0],
           "lot_id": r.tender.lots[0].id, "objection_id": objection.id, "complaint_id": complaint.id,
           "member_id": r.member_ids[0]}
    return r, ids


def test_a_supervisor_changes_nothing_but_suspensions_and_complaints(app, world, create_person, api_as):
    r, ids = world
    supervisor = create_person(roles=("supervisor",))
    db.session.commit()
    session_client, token_client = login_client(app, supervisor), api_as(supervisor)
    tried, changed = [], []
    for rule in sorted(app.url_map.iter_rules(), key=lambda x: x.rule):
        methods = (rule.methods or set()) & WRITE_METHODS
        if not methods or rule.endpoint in ALLOWED or rule.endpoint == "static":
            continue
        url = _url(rule, ids)
        for method in sorted(methods):
            for client in (session_client, token_client):
                before = snapshot()
                response = client.open(url, method=method, data={} if not url.startswith("/api/") else None,
                                       json={} if url.startswith("/api/") else None)
                db.session.rollback()
                db.session.expire_all()
                tried.append((rule.endpoint, method))
                if snapshot() != before:
                    changed.append(f"{method} {url} ({rule.endpoint}) -> {response.status_code}")
                assert response.status_code != 500, f"{method} {url}"
    assert not changed, "a supervisor changed data through: " + "; ".join(changed)
    assert len(tried) > 100  # every write endpoint of the site, twice


def test_a_supervisor_reads_every_supervised_page(app, world, create_person):
    r, ids = world
    supervisor = create_person(roles=("supervisor",))
    db.session.commit()
    client = login_client(app, supervisor)
    pages = ["/supervision", f"/supervision/tenders/{r.tender_id}", f"/supervision/tenders/{r.tender_id}?verify=log",
             "/supervision/complaints", "/supervision/statistics", "/supervision/statistics.csv", "/audit/",
             f"/tenders/{r.tender_id}", f"/tenders/{r.tender_id}/hall", f"/evaluations/{r.evaluation_id}/room",
             f"/evaluations/{r.evaluation_id}/results", f"/evaluations/{r.evaluation_id}/report.pdf",
             f"/tenders/{r.tender_id}/results", f"/tenders/{r.tender_id}/results/bids/{r.bid_ids[0]}",
             f"/tenders/{r.tender_id}/complaints", f"/api/evaluation/tenders/{r.tender_id}/report/verification",
             f"/supervision/tenders/{r.tender_id}/archive.zip", f"/tenders/{r.tender_id}/draw/watch"]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, (page, response.status_code)
    draw = client.get(f"/tenders/{r.tender_id}/draw/watch").get_data(as_text=True)
    assert "data-form=" not in draw  # the draw page, read-only: no form at all


def test_others_may_not_open_the_supervision_pages(app, world):
    r, _ids = world
    for person in (r.bidders[0].person, r.host, r.experts[0]):
        client = login_client(app, person)
        for page in ("/supervision", f"/supervision/tenders/{r.tender_id}", "/supervision/complaints"):
            assert client.get(page).status_code == 403, (person.name, page)
        assert client.post(f"/supervision/tenders/{r.tender_id}/suspend", data={"reason": "x"}).status_code == 403
    assert db.session.get(type(r.tender), r.tender_id).hold_reason is None
    assert app.test_client().get("/supervision").status_code in (302, 401)


def test_the_allowed_acts_through_the_pages(app, world, create_person):
    r, ids = world
    supervisor = create_person(roles=("supervisor",))
    db.session.commit()
    client = login_client(app, supervisor)
    assert client.post(f"/supervision/tenders/{r.tender_id}/suspend", data={"reason": "核查"}).status_code == 303
    db.session.expire_all()
    assert db.session.get(type(r.tender), r.tender_id).hold_reason == "核查"
    assert client.post(f"/supervision/tenders/{r.tender_id}/resume").status_code == 303
    assert client.post(f"/supervision/complaints/{ids['complaint_id']}/accept",
                       data={"decision": "accept", "note": "受理"}).status_code == 303
    assert client.post(f"/supervision/complaints/{ids['complaint_id']}/decide",
                       data={"outcome": "dismissed", "decision": "不成立"}).status_code == 303
    db.session.expire_all()
    from supervision.models import Complaint
    assert db.session.get(Complaint, ids["complaint_id"]).outcome == "dismissed"
    assert "不成立" in app.test_client().get(f"/tenders/{r.tender_id}/complaints").get_data(as_text=True)
    assert db.session.execute(text("select count(*) from audit_events where action like 'complaint.%'")).scalar() == 3
