"""Optimistic locking under real concurrency: two staff members publish (or amend) the same tender at once.

On PostgreSQL both requests run in their own threads and sessions through the real app; a ``before_flush``
barrier makes both read the same version before either writes, so the race is certain, not likely. One
wins; the other gets 409 and the trail records its refused attempt, in a transaction of its own.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from bidding.models import Amendment, Tender, TenderStatus
from core.audit import AuditEvent
from core.audit_verify import verify_chain
from core.db import db
from tests.bidding.conftest import actions


def race(calls):
    """Run ``calls`` (client, url, json) in parallel threads; each waits for the others before its first
    flush of a Tender, so all of them read the same version. Return the responses in call order."""
    barrier = threading.Barrier(len(calls))
    racing: set[int] = set()
    waited: set[int] = set()

    def hold(session, flush_context, instances):
        me = threading.get_ident()
        if me in racing and me not in waited and any(isinstance(o, Tender) for o in session.dirty):
            waited.add(me)
            barrier.wait(timeout=20)

    responses: list = [None] * len(calls)

    def run(i, client, url, body):
        racing.add(threading.get_ident())
        responses[i] = client.post(url, json=body)

    event.listen(Session, "before_flush", hold)
    try:
        threads = [threading.Thread(target=run, args=(i, *call)) for i, call in enumerate(calls)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        event.remove(Session, "before_flush", hold)
    assert waited == racing, "both requests must have reached the write"
    return responses


@pytest.fixture
def two_staff(create_person, api_as):
    def make(tender):
        second = create_person(roles=("tenderer",), organisation=tender.tenderer)
        db.session.commit()
        return api_as(tender.created_by), api_as(second)
    return make


@pytest.mark.postgres
def test_two_publishers_exactly_one_wins(create_tender, two_staff):
    tender = create_tender()
    db.session.commit()
    first, second = two_staff(tender)
    url = f"/api/tenders/{tender.id}/publish"
    responses = race([(first, url, {"version": 1}), (second, url, {"version": 1})])

    assert sorted(r.status_code for r in responses) == [200, 409]
    loser = next(r for r in responses if r.status_code == 409).get_json()
    assert set(loser) == {"code", "message", "fields"} and loser["code"] == "conflict"
    db.session.expire_all()
    stored = db.session.get(Tender, tender.id)
    assert stored.status == TenderStatus.PUBLISHED and stored.version == 2
    trail = actions(tender.id)
    assert trail.count("tender.publish") == 1 and trail.count("tender.publish.conflict") == 1
    assert trail[-2:] == ["tender.publish", "tender.publish.conflict"]
    refused = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "tender.publish.conflict"))
    assert refused.summary["expected_version"] == 1 and refused.summary["current_version"] == 2
    assert verify_chain().ok


@pytest.mark.postgres
def test_two_amenders_exactly_one_wins(create_tender, two_staff):
    tender = create_tender(publish=True)
    db.session.commit()
    first, second = two_staff(tender)
    url = f"/api/tenders/{tender.id}/amendments"
    version = tender.version
    later = (tender.bid_deadline_at + timedelta(days=3)).isoformat()
    responses = race([
        (first, url, {"version": version, "summary": "Deadline +3 days", "affects_bids": True,
                      "bid_deadline_at": later}),
        (second, url, {"version": version, "summary": "Clarification of lot 1", "affects_bids": False}),
    ])

    assert sorted(r.status_code for r in responses) == [201, 409]
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Amendment)) == 1
    trail = actions(tender.id)
    assert trail.count("tender.amend") == 1 and trail.count("tender.amend.conflict") == 1
    assert db.session.get(Tender, tender.id).version == version + 1


def test_a_stale_publish_is_refused_and_recorded(create_tender, two_staff):
    """The same refusal without threads (any database): the second publisher saw version 1."""
    tender = create_tender()
    db.session.commit()
    first, second = two_staff(tender)
    url = f"/api/tenders/{tender.id}/publish"
    assert first.post(url, json={"version": 1}).status_code == 200
    response = second.post(url, json={"version": 1})
    assert response.status_code == 409 and response.get_json()["code"] == "conflict"
    assert "version 1" in response.get_json()["message"] and "version 2" in response.get_json()["message"]
    trail = actions(tender.id)
    assert trail.count("tender.publish") == 1 and trail[-1] == "tender.publish.conflict"
