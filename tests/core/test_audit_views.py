"""The /audit pages: who may read them, filters, pagination, and the chain's verification at the top."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from core.actor import Actor
from core.audit import record
from core.audit_views import PER_PAGE, parse_filters
from core.clock import clock
from core.db import db
from tests.core.audit_fixtures import ALICE, BOB, make_events, tamper_fixture  # noqa: F401  (fixture)


@pytest.fixture
def login(client):
    def login_as(person):
        with client.session_transaction() as session:
            session["_user_id"] = person.get_id()
            session["_fresh"] = True
        return client
    return login_as


@pytest.fixture
def supervisor_client(create_person, login):
    person = create_person(roles=("supervisor",), name="Supervisor Wang")
    db.session.commit()
    return login(person)


def shown_seqs(response) -> list[int]:
    return [int(s) for s in re.findall(r'<tr data-seq="(\d+)">', response.get_data(as_text=True))]


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get("/audit/?action=x")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"] and "next=" in response.headers["Location"]


@pytest.mark.parametrize("roles", [("bidder",), ("tenderer",), ("expert",), ("custodian",), ()])
def test_other_roles_are_refused(create_person, create_org, login, roles):
    person = create_person(roles=roles, organisation=create_org())
    db.session.commit()
    response = login(person).get("/audit/")
    assert response.status_code == 403
    assert b"audit-events" not in response.data


@pytest.mark.parametrize("role", ["supervisor", "admin"])
def test_supervisors_and_admins_read_the_trail(create_person, login, role):
    make_events(3)
    person = create_person(roles=(role,))
    db.session.commit()
    response = login(person).get("/audit/")
    assert response.status_code == 200
    assert shown_seqs(response) == [3, 2, 1]  # newest first
    html = response.get_data(as_text=True)
    assert 'data-chain="intact"' in html and "Alice Zhang" in html and "203.0.113.9" in html


def test_verification_at_the_top_names_the_broken_link(supervisor_client, tamper):
    make_events(4)
    tamper("UPDATE audit_events SET actor_name = 'Mallory' WHERE seq = 2")
    html = supervisor_client.get("/audit/?lang=en").get_data(as_text=True)
    assert 'data-chain="broken"' in html and 'data-reason="edited"' in html
    assert "Chain broken at event 2" in html


def test_verification_is_reused_for_a_few_minutes_unless_forced(supervisor_client, tamper):
    clock.freeze(datetime(2026, 3, 2, 2, 0, tzinfo=UTC))
    make_events(4)
    assert 'data-chain="intact"' in supervisor_client.get("/audit/").get_data(as_text=True)
    tamper("DELETE FROM audit_events WHERE seq = 2")
    clock.travel(timedelta(minutes=4))
    stale = supervisor_client.get("/audit/").get_data(as_text=True)
    assert 'data-chain="intact"' in stale and "2026-03-02 10:00:00" in stale  # says when it was checked
    assert 'data-reason="deleted"' in supervisor_client.get("/audit/?verify=1").get_data(as_text=True)
    tamper("DELETE FROM audit_events WHERE seq = 1")
    clock.travel(timedelta(minutes=5))
    expired = supervisor_client.get("/audit/?lang=en").get_data(as_text=True)
    assert "Chain broken at event 1" in expired  # re-verified: the first broken link moved


def test_filters(supervisor_client):
    clock.freeze(datetime(2026, 3, 1, 15, 0, tzinfo=UTC))  # 23:00 on 1 March, Beijing time
    record(ALICE, "tender.published", "tender", 1)
    clock.travel(timedelta(hours=2))  # 01:00 on 2 March, Beijing time
    record(ALICE, "tender.amended", "tender", 1)
    record(BOB, "bid.opened", "bid", 5)
    record(Actor(person_id=31, name="Carol Chen"), "tender.amended", "tender", 2)
    db.session.commit()
    cases = {
        "object_type=bid": [3],
        "object_type=tender&object_id=1": [2, 1],
        "actor=alice": [2, 1],
        "actor=31": [4],
        "action=tender.amended": [4, 2],
        "date_from=2026-03-02": [4, 3, 2],
        "date_to=2026-03-01": [1],
        "date_from=2026-03-01&date_to=2026-03-01&action=tender.published": [1],
        "actor=nobody": [],
    }
    for query, expected in cases.items():
        assert shown_seqs(supervisor_client.get(f"/audit/?{query}")) == expected, query


def test_a_bad_date_is_explained_not_fatal(supervisor_client):
    make_events(2)
    response = supervisor_client.get("/audit/?date_from=2026-13-40&lang=en")
    assert response.status_code == 200
    assert "YYYY-MM-DD" in response.get_data(as_text=True)
    assert shown_seqs(response) == [2, 1]


def test_pagination_keeps_the_filters(supervisor_client):
    make_events(PER_PAGE + 5)
    record(BOB, "other.thing", "other", 1)
    db.session.commit()
    first = supervisor_client.get("/audit/?object_type=tender")
    assert shown_seqs(first) == list(range(PER_PAGE + 5, 5, -1))
    next_link = re.search(r'href="([^"]+)" rel="next"', first.get_data(as_text=True)).group(1).replace("&amp;", "&")
    assert "object_type=tender" in next_link and "page=2" in next_link
    assert shown_seqs(supervisor_client.get(next_link)) == [5, 4, 3, 2, 1]


def test_the_page_is_read_only(supervisor_client):
    assert supervisor_client.post("/audit/").status_code == 405


@pytest.mark.parametrize("args, filters, errors", [
    ({"object_type": " tender "}, {"object_type": "tender"}, {}),
    ({"actor": "", "action": "x"}, {"action": "x"}, {}),
    ({"date_from": "2026-02-30"}, {}, {"date_from"}),
    ({"date_to": "2026-03-02", "page": "2"}, {"date_to": "2026-03-02"}, {}),
])
def test_parse_filters(app, args, filters, errors):
    parsed, problems = parse_filters(args)
    assert parsed == filters and set(problems) == set(errors)
