"""The supervision console: a planted tender flagged with its evidence, the live feed over Socket.IO, the
transparency log verified on demand."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bidding.sealed_models import LogEntry
from core import audit
from core.actor import Actor
from core.db import db
from core.notifications import Notification
from core.realtime import socketio
from supervision.feed import EVENT, NAMESPACE
from supervision.screening import latest_run, run_screens
from tests.bidding.hall_support import login_client
from tests.bidding.test_sealed_tamper import sql, unguarded  # noqa: F401  (the fixture drops the log's guards)
from tests.evaluation.room_support import *  # noqa: F403  (make_room and the fixtures it needs)

SHARED = "61.155.20.77"


def _plant_same_address(r, bidders=(0, 1)):
    """Two bidders' uploads as seen from one public address and one client installation (audit events)."""
    for i in bidders:
        b = r.bidders[i]
        actor = Actor(person_id=b.person.id, name=b.person.name, role="bidder", organisation_id=b.org.id,
                      organisation_uscc=b.org.uscc, source=SHARED, device="ebid-client/abc | ebid-client/1.0")
        audit.record(actor, "bid.upload.start", "tender", r.tender_id, {"device": actor.device})
    db.session.commit()


def test_a_planted_tender_is_flagged_in_the_console(app, make_room, create_person):
    r = make_room(experts=3, bidders=4, signed_in=False)
    supervisor = create_person(roles=("supervisor",))
    db.session.commit()
    clean = run_screens(Actor.system(), r.tender_id)
    db.session.commit()
    assert [f["code"] for f in clean.findings if f["kind"] == "legal"] == []
    _plant_same_address(r)
    run = run_screens(Actor.system(), r.tender_id)
    db.session.commit()
    codes = {f["code"] for f in run.findings}
    assert {"same_address", "same_device"} <= codes
    finding = next(f for f in run.findings if f["code"] == "same_address")
    planted = {db.session.get(type(r.bidders[0].org), b.org.id).name for b in r.bidders[:2]}
    assert SHARED in str(finding["evidence"]) and len(finding["bid_ids"]) == 2
    assert db.session.scalar(select(Notification.id).where(Notification.kind == "collusion_warning",
                                                           Notification.person_id == supervisor.id))
    client = login_client(app, supervisor)
    console = client.get("/supervision").get_data(as_text=True)
    assert f'data-tender="{r.tender_id}"' in console and "data-flagged" in console
    page = client.get(f"/supervision/tenders/{r.tender_id}").get_data(as_text=True)
    assert 'data-finding="same_address"' in page and SHARED in page
    assert "evaluation.started" in page  # the tender's events include those that name it (tender_id)
    assert any(name in page for name in planted)
    assert latest_run(r.tender_id).id == run.id


def test_the_feed_reaches_supervisors_only(app, make_room, create_person):
    r = make_room(experts=3, bidders=3, signed_in=False)
    supervisor = create_person(roles=("supervisor",))
    db.session.commit()
    with app.app_context():  # one app context per connection, as in production (g caches the user)
        watcher = socketio.test_client(app, namespace=NAMESPACE, flask_test_client=login_client(app, supervisor))
    with app.app_context():
        outsider = socketio.test_client(app, namespace=NAMESPACE,
                                        flask_test_client=login_client(app, r.bidders[0].person))
    assert watcher.is_connected(NAMESPACE) and not outsider.is_connected(NAMESPACE)
    audit.record(r.host_actor, "tender.test_event", "tender", r.tender_id, {})
    db.session.commit()
    received = [m["args"][0] for m in watcher.get_received(NAMESPACE) if m["name"] == EVENT]
    assert any(e["action"] == "tender.test_event" and e["tender_id"] == r.tender_id for e in received)
    with app.app_context():
        watcher.disconnect(NAMESPACE)


@pytest.mark.usefixtures("unguarded")
def test_the_log_is_verified_on_demand_and_a_changed_entry_is_named(app, make_room, create_person):
    r = make_room(experts=3, bidders=3, signed_in=False)
    supervisor = create_person(roles=("supervisor",))
    db.session.commit()
    client = login_client(app, supervisor)
    page = client.get(f"/supervision/tenders/{r.tender_id}?verify=log").get_data(as_text=True)
    assert 'data-log-verdict="ok"' in page
    search = client.get(f"/supervision/tenders/{r.tender_id}?log_kind=submission").get_data(as_text=True)
    assert "submission" in search
    # a changed entry (below the ORM's append-only discipline: straight in the table) is reported
    row = db.session.scalar(select(LogEntry).where(LogEntry.tender_id == r.tender_id, LogEntry.index == 1))
    data = bytearray(row.entry)
    data[-3] ^= 0x01
    db.session.commit()
    sql("UPDATE log_entries SET entry = :entry WHERE id = :id", entry=bytes(data), id=row.id)
    page = client.get(f"/supervision/tenders/{r.tender_id}?verify=log").get_data(as_text=True)
    assert 'data-log-verdict="broken"' in page and "entry 1" in page
