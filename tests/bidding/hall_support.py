"""Helpers of the opening-hall tests: a tender at its opening with three bidders, people, hall clients."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from bidding import opening
from bidding.hall import BROADCASTER
from bidding.hall_events import NAMESPACE
from bidding.hall_presence import KEY_PREFIX
from bidding.hall_state import apply_presence_changes
from bidding.models import Tender
from bidding.sealed_closing import close_tender
from core.actor import Actor
from core.db import db
from core.identity.access import actor_for
from core.identity.models import OrganisationKind, Person
from core.identity.tokens import issue_api_token
from core.realtime import socketio
from tests.bidding.sealed_support import Bidder, Kit, lot_of, past_deadline, submit
from tests.factories import PASSWORD


@dataclass
class Hall:
    """A tender with three sealed bids, past its deadline, with a named host and supervisor."""

    tender: Tender
    bidders: list[Bidder]
    host: Person
    supervisor: Person
    envelopes: dict[int, bytes] = field(default_factory=dict)  # organisation id -> envelope

    @property
    def tender_id(self) -> int:
        return self.tender.id


def build_hall(kit: Kit, clock, *, bidders: int = 3, close: bool = True, name: bool = True) -> Hall:
    """Publish, let ``bidders`` bid, pass the deadline and close; name host and supervisor."""
    tender = kit.tender(mode="bidder_then_custodians")
    lot = lot_of(tender)
    people = [kit.bidder() for _ in range(bidders)]
    envelopes = {}
    for b in people:
        envelope = kit.seal(tender, lot, b)
        response = submit(b.client, tender, lot, envelope)
        assert response.status_code in (200, 201), response.get_json()
        envelopes[b.org.id] = envelope
    host = tender.created_by
    supervisor = kit.create_person(roles=("supervisor",), name="监督员 李")
    db.session.commit()
    if close:
        past_deadline(tender, clock)
        close_tender(Actor.system(source="test"), tender.id)
        db.session.commit()
        if name:
            opening.name_participants(actor_for(host, "tenderer", tender.tenderer_id), tender.id,
                                      host_id=host.id, supervisor_ids=[supervisor.id])
            db.session.commit()
    db.session.refresh(tender)
    return Hall(tender, people, host, supervisor, envelopes)


def outsider(kit: Kit) -> Person:
    """A bidder of an organisation without a bid in the tender."""
    org = kit.create_org(kind=OrganisationKind.COMPANY)
    person = kit.create_person(roles=("bidder",), organisation=org)
    db.session.commit()
    return person


def login_client(app, person: Person):
    """A Flask test client logged in as ``person`` (session cookie)."""
    client = app.test_client()
    response = client.post("/login", data={"email": person.email, "password": PASSWORD})
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]
    return client


class FreshHallClient:
    """A Socket.IO test client whose every call runs in its own app context, as each event does in production.

    The ``app`` fixture keeps one app context open for the whole test; without this, the handlers would
    share its ``g`` (Flask-Login's cached user) and its database session (compare FreshContextClient).
    """

    def __init__(self, app, **kwargs) -> None:
        self.app = app
        with app.app_context():
            self.client = socketio.test_client(app, namespace=NAMESPACE, **kwargs)

    def is_connected(self, namespace: str = NAMESPACE) -> bool:
        return self.client.is_connected(namespace)

    def get_received(self, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
        return self.client.get_received(namespace)

    def emit(self, *args, **kwargs):
        with self.app.app_context():
            return self.client.emit(*args, **kwargs)

    def connect(self, namespace: str = NAMESPACE, **kwargs) -> None:
        with self.app.app_context():
            self.client.connect(namespace=namespace, **kwargs)

    def disconnect(self, namespace: str = NAMESPACE) -> None:
        with self.app.app_context():
            self.client.disconnect(namespace)


def hall_client(app, person: Person | None = None, *, token: str | None = None) -> FreshHallClient:
    """A Socket.IO test client of ``/hall``: by session cookie for ``person``, or by API ``token``."""
    flask_client = login_client(app, person) if person is not None else app.test_client()
    return FreshHallClient(app, flask_test_client=flask_client, auth={"token": token} if token else None)


def token_for(person: Person) -> str:
    _, plaintext = issue_api_token(actor_for(person), person, "hall tests")
    db.session.commit()
    return plaintext


def events(client, name: str) -> list[dict[str, Any]]:
    """The payloads of event ``name`` received since the last call (others are dropped)."""
    return [r["args"][0] for r in client.get_received(NAMESPACE) if r["name"] == name]


def join(client, tender_id: int, **extra) -> dict[str, Any]:
    return client.emit("join", {"tender_id": tender_id, **extra}, namespace=NAMESPACE, callback=True)


def act(client, tender_id: int, action: str, **extra) -> dict[str, Any]:
    return client.emit("action", {"tender_id": tender_id, "action": action, **extra}, namespace=NAMESPACE,
                       callback=True)


def flush_presence(app) -> list[int]:
    """Send the marked rooms' presence now (the timer would within a second; see bidding/hall_broadcast.py)."""
    broadcaster = app.extensions.get(BROADCASTER)
    return broadcaster.flush(force=True) if broadcaster is not None else []


class PresenceMirror:
    """The presence list as hall.js keeps it: replaced by ``hall.state``, then moved on by the deltas.

    :meth:`read` takes a client's received events in order; a delta whose ``seq`` skips one makes it ask for
    the state (``resyncs`` counts the requests), as hall.js does.
    """

    def __init__(self, client, tender_id: int) -> None:
        self.client, self.tender_id = client, tender_id
        self.view: list[dict[str, Any]] = []
        self.seq = 0
        self.resyncs = 0
        self.seqs: list[int] = []  # the deltas' seq numbers, in the order received
        self.early: list[dict[str, Any]] | None = []  # deltas received before the join's state

    def state(self, state: dict[str, Any]) -> bool:
        """Take a ``hall.state``, then the deltas kept since joining; True when it asks again."""
        newer = self.seq > state["presence_seq"]
        self.view, self.seq = state["presence"], state["presence_seq"]
        early, self.early = self.early or [], None
        return any([self.delta(payload) for payload in early]) or newer

    def delta(self, payload: dict[str, Any]) -> bool:
        """Apply one ``hall.presence``; True when the page would ask for the whole state."""
        if self.early is not None:
            self.early.append(payload)
            return False
        self.seqs.append(payload["seq"])
        if payload.get("full"):
            self.view, self.seq = apply_presence_changes([], payload["changes"]), payload["seq"]
            return False
        if payload["seq"] <= self.seq:
            return False
        gap = payload["seq"] > self.seq + 1
        self.view, self.seq = apply_presence_changes(self.view, payload["changes"]), payload["seq"]
        return gap

    def read(self) -> None:
        resync = False
        for received in self.client.get_received(NAMESPACE):
            if received["name"] == "hall.state":
                resync = self.state(received["args"][0]) or resync
            elif received["name"] == "hall.presence":
                resync = self.delta(received["args"][0]) or resync
        if resync:
            self.resyncs += 1
            answer = self.client.emit("state", {"tender_id": self.tender_id}, namespace=NAMESPACE, callback=True)
            assert answer == {"ok": True}
            self.read()  # the state requested (and anything after it)


@pytest.fixture
def clean_presence(app, settings):
    """Forget presence records of earlier tests (tender ids repeat on PostgreSQL; Redis outlives the test).

    The presence timer is set to a long interval, so that only the test's own :func:`flush_presence` sends
    presence (tests of the timer set a short one).
    """
    def wipe():
        app.extensions.pop("ebid.hall_presence", None)
        broadcaster = app.extensions.pop(BROADCASTER, None)
        if broadcaster is not None:
            broadcaster.stop()
        if settings.redis_url:
            import redis

            r = redis.Redis.from_url(settings.redis_url)
            keys = list(r.scan_iter(f"{KEY_PREFIX}*"))
            if keys:
                r.delete(*keys)
    wipe()
    app.config["EBID_HALL_PRESENCE_INTERVAL"] = 600.0
    yield
    wipe()
    app.config.pop("EBID_HALL_PRESENCE_INTERVAL", None)
