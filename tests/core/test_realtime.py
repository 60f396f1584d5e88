"""The realtime publisher: events reach a room's clients only after the transaction commits."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace

import pytest
import socketio as socketio_client
from flask_socketio import Namespace, join_room
from socketio import Manager, RedisManager
from werkzeug.serving import make_server

from core.actor import Actor
from core.audit import record
from core.db import db
from core.realtime import channel_for, external_emitter, publish, room, socketio, uses_message_queue
from ebid.app import create_app
from tests.conftest import TEST_REDIS_URL

NS = "/test-realtime"
needs_redis = pytest.mark.skipif(not TEST_REDIS_URL, reason="needs EBID_TEST_REDIS_URL")


class JoinNamespace(Namespace):
    """A namespace for these tests only: any client may join any room (domains authorise theirs)."""

    def on_join(self, name):
        join_room(name)
        return True


@pytest.fixture
def namespace(app):
    socketio.on_namespace(JoinNamespace(NS))  # registered on this app's server only
    return NS


@pytest.fixture
def joined(app, client, namespace):
    """Return a connected test client that joined ``room``."""
    clients = []

    def connect(room_name: str):
        sio = socketio.test_client(app, namespace=namespace, flask_test_client=client)
        assert sio.is_connected(namespace)
        assert sio.emit("join", room_name, namespace=namespace, callback=True) is True
        clients.append(sio)
        return sio

    yield connect
    for sio in clients:
        sio.disconnect(namespace=namespace)


def change_something() -> None:
    record(Actor.system("test"), "bid.received", "tender", 1)


def test_event_reaches_the_room_only_after_commit(app, joined):
    hall = joined(room("tender", 1))
    change_something()
    publish("bid.received", {"tender": 1, "count": 3}, room=room("tender", 1), namespace=NS)
    assert hall.get_received(NS) == []
    db.session.commit()
    assert hall.get_received(NS) == [{"name": "bid.received", "args": [{"tender": 1, "count": 3}], "namespace": NS}]


def test_rollback_sends_nothing(app, joined):
    hall = joined("tender:1")
    change_something()
    publish("bid.received", {"tender": 1}, room="tender:1", namespace=NS)
    db.session.rollback()
    db.session.commit()  # a later commit does not revive the dropped event
    assert hall.get_received(NS) == []


def test_only_the_room_receives(app, joined):
    hall_1, hall_2 = joined("tender:1"), joined("tender:2")
    change_something()
    publish("board.updated", {"n": 1}, room="tender:2", namespace=NS)
    publish("notice", {"all": True}, namespace=NS)  # no room: every client of the namespace
    db.session.commit()
    assert [m["name"] for m in hall_1.get_received(NS)] == ["notice"]
    assert [m["name"] for m in hall_2.get_received(NS)] == ["board.updated", "notice"]


def test_events_keep_their_order(app, joined):
    hall = joined("tender:1")
    for i in range(5):
        publish("tick", i, room="tender:1", namespace=NS)
    db.session.commit()
    assert [m["args"] for m in hall.get_received(NS)] == [[0], [1], [2], [3], [4]]


def test_a_failed_push_does_not_fail_the_committed_transaction(app, joined, monkeypatch, caplog):
    hall = joined("tender:1")

    def unreachable(*args, **kwargs):
        raise ConnectionError("message queue unreachable")

    monkeypatch.setattr(socketio.server, "emit", unreachable)  # a broker outage, as the library sees it
    change_something()
    publish("bid.received", {"tender": 1}, room="tender:1", namespace=NS)
    db.session.commit()
    assert "realtime event bid.received to room tender:1 could not be sent" in caplog.text
    monkeypatch.undo()
    change_something()  # the session is still usable and later events flow again
    publish("bid.received", {"tender": 1, "again": True}, room="tender:1", namespace=NS)
    db.session.commit()
    assert [m["args"] for m in hall.get_received(NS)] == [[{"tender": 1, "again": True}]]


def test_payload_that_is_not_json_fails_inside_the_service(app):
    with pytest.raises(TypeError):
        publish("bad", {"when": object()})


def test_server_is_threaded_and_same_origin(app):
    assert socketio.async_mode == "threading"
    assert socketio.server.eio.cors_allowed_origins is None  # engine.io: same origin only
    assert isinstance(socketio.server.manager, Manager)
    assert not isinstance(socketio.server.manager, RedisManager)  # test settings: in-process


def test_cross_origin_handshake_is_refused(app, client):
    handshake = "/socket.io/?EIO=4&transport=polling"
    assert client.get(handshake, headers={"Origin": "https://evil.example"}).status_code == 400
    same_origin = client.get(handshake, headers={"Origin": "http://localhost"})
    assert same_origin.status_code == 200 and b'"sid"' in same_origin.data


@pytest.mark.parametrize("url, channel", [
    ("redis://127.0.0.1:6379/12", "ebid-socketio-12"),
    ("redis://127.0.0.1:6379", "ebid-socketio-0"),
    ("redis://:pw@cache:6380/3", "ebid-socketio-3"),
])
def test_channel_is_per_redis_database(url, channel):
    assert channel_for(url) == channel


@pytest.mark.parametrize("redis_url, testing, override, expected", [
    (None, False, None, False),
    (None, False, True, False),
    ("redis://h/1", False, None, True),
    ("redis://h/1", True, None, False),
    ("redis://h/1", True, True, True),
    ("redis://h/1", False, False, False),
])
def test_when_the_message_queue_is_used(settings, redis_url, testing, override, expected):
    extra = {} if override is None else {"realtime_message_queue": override}
    assert uses_message_queue(replace(settings, redis_url=redis_url, testing=testing, extra=extra)) is expected


@needs_redis
def test_events_cross_processes_through_redis(settings):
    """A real server on the Redis queue delivers events from an app-less emitter (a worker, a script)."""
    app = create_app(replace(settings, extra={"realtime_message_queue": True}))
    assert isinstance(socketio.server.manager, RedisManager)
    socketio.on_namespace(JoinNamespace(NS))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        received = asyncio.run(_connect_join_and_wait(f"http://127.0.0.1:{server.server_port}",
                                                      external_emitter(TEST_REDIS_URL)))
    finally:
        server.shutdown()
        thread.join(timeout=10)
    assert received == ["opening.started", {"tender": 9}]


async def _connect_join_and_wait(url: str, emitter) -> list:
    client = socketio_client.AsyncSimpleClient()
    await client.connect(url, namespace=NS, transports=["polling"])
    try:
        assert await client.call("join", "tender:9", timeout=5) is True
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the server subscribes to Redis in the background
            emitter.emit("opening.started", {"tender": 9}, to="tender:9", namespace=NS)
            try:
                return await client.receive(timeout=0.5)
            except socketio_client.exceptions.TimeoutError:
                continue
        raise AssertionError("no event arrived through Redis within 10 s")
    finally:
        await client.disconnect()
