"""The hall during a real opening: the board goes live for everyone, content only after decryption, causes agreed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bidding import opening, opening_decrypt, opening_process
from bidding.hall_events import NAMESPACE
from core.clock import clock
from core.db import db
from tests.bidding.conftest import api_as, frozen  # noqa: F401  (fixtures of the kit)
from tests.bidding.hall_support import act, clean_presence, events, hall_client, join  # noqa: F401
from tests.bidding.opening_support import make_opening_fixture  # noqa: F401  (the make_opening fixture)
from tests.bidding.sealed_support import kit_fixture  # noqa: F401  (the kit fixture)

pytestmark = pytest.mark.usefixtures("clean_presence")


def _send_key(o, bidder):
    opening_decrypt.submit_content_key(bidder.actor, o.tender.id, o.bid_of(bidder).public_id, o.content_key(bidder))
    db.session.commit()
    opening_process.process_pending(o.tender.id)


def test_a_decrypted_bid_reaches_every_client_and_no_content_is_shown_before(app, make_opening):
    o = make_opening(3, mode="bidder", custodians=0)
    clients = [hall_client(app, p) for p in (o.bidders[0].person, o.bidders[1].person, o.supervisor, o.host)]
    for client in clients:
        assert join(client, o.tender.id)["ok"]
    state = events(clients[2], "hall.state")[0]
    assert [row["form"] for row in state["board"]] == [None, None, None]
    assert act(clients[3], o.tender.id, "start_decryption") == {"ok": True}

    first = o.bidders[0]
    _send_key(o, first)
    for client in clients:
        rows = [r for r in events(client, "hall.board") if r["status"] == "decrypted"]
        assert [(r["bidder"], r["form"]["price"]) for r in rows] == [(first.org.name, o.prices[first.org.id])]

    late = hall_client(app, o.bidders[2].person)  # joins now: the state has the one decrypted bid only
    join(late, o.tender.id)
    board = {row["bidder"]: row for row in events(late, "hall.state")[0]["board"]}
    assert board[first.org.name]["form"]["price"] == o.prices[first.org.id]
    assert board[first.org.name]["form"]["project_manager"]["name"] == "张伟"
    assert [board[b.org.name]["form"] for b in o.bidders[1:]] == [None, None]


def test_host_and_supervisor_agree_on_a_failure_cause_in_the_hall(app, make_opening):
    o = make_opening(3, mode="bidder", custodians=0)
    opening.start_decryption(o.host_actor, o.tender.id)
    db.session.commit()
    for b in o.bidders[:2]:
        _send_key(o, b)
    clock.travel(timedelta(minutes=31))
    opening_process.advance_all(o.host_actor)
    failed = o.row_of(o.bidders[2])
    host, supervisor, bidder = (hall_client(app, p) for p in (o.host, o.supervisor, o.bidders[0].person))
    for client in (host, supervisor, bidder):
        join(client, o.tender.id)
        client.get_received(NAMESPACE)
    vote = {"bid_opening_id": failed.id, "cause": "network", "reason": "outage", "evidence": "ISP notice"}
    refused = act(bidder, o.tender.id, "decide_failure", **vote)
    assert refused["ok"] is False and refused["code"] == "read_only"
    assert act(supervisor, o.tender.id, "reveal_draw", name="K")["code"] == "supervisor_read_only"
    assert act(supervisor, o.tender.id, "decide_failure", **vote) == {"ok": True}
    assert act(host, o.tender.id, "decide_failure", **vote) == {"ok": True}
    for client in (host, supervisor, bidder):
        rows = [r for r in events(client, "hall.board") if r["id"] == failed.id]
        assert rows[-1]["failure"] == {"cause": "network", "outcome": "withdrawn", "decided": True, "reason": "outage"}
    missing = act(host, o.tender.id, "decide_failure", bid_opening_id=failed.id, cause="bidder", reason="", evidence="")
    assert missing["ok"] is False and missing["message"]


def test_asking_for_the_state_after_the_window_ends_processes_its_end(app, make_opening):
    o = make_opening(3, mode="bidder", custodians=0)
    opening.start_decryption(o.host_actor, o.tender.id)
    db.session.commit()
    _send_key(o, o.bidders[0])
    client = hall_client(app, o.bidders[1].person)
    join(client, o.tender.id)
    assert events(client, "hall.state")[0]["phase"] == "decrypting"
    clock.travel(timedelta(minutes=30))  # the countdown reached zero: hall.js asks for the state again
    assert client.emit("state", {"tender_id": o.tender.id}, namespace=NAMESPACE, callback=True) == {"ok": True}
    [state] = events(client, "hall.state")
    assert state["phase"] == "decrypted" and state["countdown"] is None
    assert sorted(row["status"] for row in state["board"]) == ["decrypted", "failed", "failed"]


@pytest.mark.parametrize("bidders", [3, 6])
def test_join_state_query_count_does_not_grow_with_the_bidders(app, make_opening, bidders):
    """Every bidder joins at the opening minute: building one's state must not cost a query per bidder."""
    from sqlalchemy import event

    from bidding.hall_queries import access_for, hall_state
    o = make_opening(bidders, mode="bidder", custodians=0)
    for b in o.bidders:
        opening.check_in(b.actor, o.tender.id, remote_addr="203.0.113.9")
    db.session.commit()
    opening.start_decryption(o.host_actor, o.tender.id)
    db.session.commit()
    for b in o.bidders:
        _send_key(o, b)
    person_id, tender_id = o.bidders[0].person.id, o.tender.id
    db.session.expunge_all()
    statements: list[str] = []
    listener = lambda _c, _cur, statement, *_a: statements.append(statement)  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        from bidding.models import Tender
        from core.identity.models import Person
        person, tender = db.session.get(Person, person_id), db.session.get(Tender, tender_id)
        state = hall_state(tender, access_for(tender, person))
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert len(state["board"]) == bidders and len(state["checkins"]) == bidders
    assert len(statements) <= 16, f"{len(statements)} statements for {bidders} bidders:\n" + "\n".join(" ".join(s.split())[:110] for s in statements)
