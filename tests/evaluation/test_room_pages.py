"""Pages of the scoring room: who opens the room, who downloads a decrypted bid, the bidder's clarification page."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from sqlalchemy import select

from bidding.opening_models import BidOpening
from core.db import db
from core.identity.models import OrganisationKind
from evaluation import room
from evaluation.room_models import Clarification, ClarificationStatus
from evaluation.room_state import room_access, room_state
from tests.bidding.hall_support import login_client
from tests.evaluation.room_support import *  # noqa: F403  (make_room and the fixtures it needs)
from tests.evaluation.room_support import room_snapshot


@pytest.fixture
def r(make_room):
    return make_room(experts=3, bidders=3)


def config_of(html: str) -> dict:
    match = re.search(r'id="room-app" data-config="([^"]*)"', html)
    assert match, html[:2000]
    return json.loads(match.group(1).replace("&#34;", '"').replace("&quot;", '"').replace("&amp;", "&"))


def test_members_and_supervisors_open_the_room(app, r):
    page = login_client(app, r.experts[0]).get(f"/evaluations/{r.evaluation_id}/room")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    config = config_of(html)
    assert config["evaluationId"] == r.evaluation_id and config["role"] == "member"
    assert config["memberId"] == r.member_ids[0] and config["namespace"] == "/room"
    assert "room/room.js" in html and "vendor/socket.io/socket.io.min.js" in html
    assert "data-clarify-form" in html and "data-suspend-form" not in html and "data-read-only" not in html

    page = login_client(app, r.supervisor).get(f"/evaluations/{r.evaluation_id}/room")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert config_of(html)["role"] == "supervisor"
    assert "data-suspend-form" in html and "data-read-only" in html and "data-clarify-form" not in html


def test_outsiders_may_not_open_the_room(app, make_room, create_org, create_person):
    r = make_room(experts=3, bidders=3, signed_in=False)
    r.sign_in(0, 1)
    stranger = create_person(roles=("bidder",), organisation=create_org(kind=OrganisationKind.COMPANY))
    db.session.commit()
    url = f"/evaluations/{r.evaluation_id}/room"
    for person in (r.bidders[0].person, r.host, stranger, r.experts[2]):  # the last one: not signed in
        assert login_client(app, person).get(url).status_code == 403, person.name
    assert login_client(app, r.experts[0]).get(f"/evaluations/{r.evaluation_id + 99}/room").status_code == 404
    anonymous = app.test_client().get(url)
    assert anonymous.status_code in (302, 401) and "/login" in anonymous.headers.get("Location", "/login")


def test_the_decrypted_bid_file_is_served_to_the_room_only(app, r, settings):
    row = db.session.get(BidOpening, r.bid_ids[0])
    stored = (settings.storage_dir / row.plaintext_sha256[:2] / row.plaintext_sha256).read_bytes()
    for person in (r.experts[1], r.supervisor):
        client = login_client(app, person)
        for tail in ("file", "bid.zip"):
            response = client.get(f"/evaluations/{r.evaluation_id}/bids/{row.id}/{tail}")
            assert response.status_code == 200 and response.mimetype == "application/zip"
            assert hashlib.sha256(response.data).hexdigest() == row.plaintext_sha256 and response.data == stored
            assert "attachment" in response.headers["Content-Disposition"]
    member = login_client(app, r.experts[0])
    assert member.get(f"/evaluations/{r.evaluation_id}/bids/{r.failed_bid_ids[0]}/file").status_code == 404
    assert member.get(f"/evaluations/{r.evaluation_id}/bids/999999/file").status_code == 404
    for person in (r.bidders[0].person, r.host):
        assert login_client(app, person).get(f"/evaluations/{r.evaluation_id}/bids/{row.id}/file").status_code == 403


def _ask(r, bid_index: int = 0, question: str = "请说明工期安排的依据。") -> Clarification:
    row = room.ask_clarification(r.member_actor(0), r.evaluation_id, r.bid_ids[bid_index], question, minutes=30)
    db.session.commit()
    return row


def test_the_bidder_reads_and_answers_the_committees_question(app, r):
    bidder = r.bidder_of(r.bid_ids[0])
    client = login_client(app, bidder.person)
    url = f"/tenders/{r.tender_id}/clarifications"
    empty = client.get(url)
    assert empty.status_code == 200 and "data-clarification=" not in empty.get_data(as_text=True)
    c = _ask(r)
    html = client.get(url).get_data(as_text=True)
    assert "请说明工期安排的依据。" in html and f'data-clarification="{c.id}"' in html and "data-answer-form" in html
    assert "Expert" not in html and "专家" not in html  # the asking expert stays anonymous

    answered = client.post(url, data={"clarification_id": c.id, "answer": "工期按施工组织设计第3章安排。"})
    assert answered.status_code == 303 and answered.headers["Location"].endswith(f"#c{c.id}")
    db.session.expire_all()
    row = db.session.get(Clarification, c.id)
    assert row.status == ClarificationStatus.ANSWERED and row.answer == "工期按施工组织设计第3章安排。"
    assert row.answered_by_id == bidder.person.id
    html = client.get(url).get_data(as_text=True)
    assert "工期按施工组织设计第3章安排。" in html and "data-answer-form" not in html


def test_a_refused_answer_is_shown_beside_the_form_and_changes_nothing(app, r):
    bidder = r.bidder_of(r.bid_ids[0])
    c = _ask(r)
    client = login_client(app, bidder.person)
    url = f"/tenders/{r.tender_id}/clarifications"
    before = room_snapshot()
    refused = client.post(url, data={"clarification_id": c.id, "answer": "   "})
    assert refused.status_code == 422
    assert 'role="alert"' in refused.get_data(as_text=True) and "data-answer-form" in refused.get_data(as_text=True)
    assert room_snapshot() == before
    assert db.session.get(Clarification, c.id).status == ClarificationStatus.OPEN


def test_only_the_bidder_asked_sees_and_answers(app, r, create_org, create_person):
    c = _ask(r)
    url = f"/tenders/{r.tender_id}/clarifications"
    other = login_client(app, r.bidder_of(r.bid_ids[1]).person)
    assert "请说明工期安排的依据。" not in other.get(url).get_data(as_text=True)
    before = room_snapshot()
    assert other.post(url, data={"clarification_id": c.id, "answer": "我们来回答"}).status_code == 404
    assert room_snapshot() == before
    stranger = create_person(roles=("bidder",), organisation=create_org(kind=OrganisationKind.COMPANY))
    db.session.commit()
    for person in (stranger, r.experts[0], r.host):
        assert login_client(app, person).get(url).status_code == 403, person.name


def test_the_answer_reaches_the_room_state(app, r):
    bidder = r.bidder_of(r.bid_ids[0])
    c = _ask(r)
    login_client(app, bidder.person).post(f"/tenders/{r.tender_id}/clarifications",
                                         data={"clarification_id": c.id, "answer": "见附件。"})
    db.session.expire_all()
    state = room_state(r.evaluation_id, room_access(r.experts[1].id, r.evaluation_id))
    [view] = [x for x in state["clarifications"] if x["id"] == c.id]
    assert view["status"] == "answered" and view["answer"] == "见附件。"
    assert db.session.scalar(select(Clarification.id).where(Clarification.answer == "见附件。")) == c.id


def test_the_tender_page_links_bidders_to_their_clarification_page(app, r):
    url = f"/tenders/{r.tender_id}"
    html = login_client(app, r.bidders[0].person).get(url).get_data(as_text=True)
    assert f'data-clarifications-link href="/tenders/{r.tender_id}/clarifications"' in html
    for person in (r.experts[0], r.host):
        assert "data-clarifications-link" not in login_client(app, person).get(url).get_data(as_text=True)
    assert "data-clarifications-link" not in app.test_client().get(url).get_data(as_text=True)
