"""Presence in the opening hall (在线名单): coalesced delta broadcasts with seq numbers, resync, convergence."""

from __future__ import annotations

import threading
import time

import pytest

from bidding.hall import BROADCASTER
from bidding.hall_broadcast import PresenceBroadcaster
from bidding.hall_events import NAMESPACE
from bidding.hall_presence import KEY_PREFIX, RedisPresence
from bidding.hall_queries import presence_store
from bidding.hall_state import presence_view
from core.clock import clock
from tests.bidding.conftest import api_as, frozen  # noqa: F401  (fixtures of the kit)
from tests.bidding.hall_support import (  # noqa: F401  (clean_presence is a fixture)
    PresenceMirror,
    build_hall,
    clean_presence,
    events,
    flush_presence,
    hall_client,
    join,
)
from tests.bidding.sealed_support import kit_fixture, past_deadline  # noqa: F401  (the kit fixture)

pytestmark = pytest.mark.usefixtures("clean_presence")


class FakeTime:
    def __init__(self) -> None:
        self.at = 100.0

    def __call__(self) -> float:
        return self.at


def _broadcaster(claim=None, fail: set[int] | None = None):
    sent: list[int] = []
    fake = FakeTime()

    def send(tender_id: int) -> None:
        if tender_id in (fail or set()):
            raise ConnectionError("database unreachable")
        sent.append(tender_id)
    return PresenceBroadcaster(send, interval=1.0, claim=claim, clock=fake), sent, fake


# (marks before the first flush, seconds later, marks before the second flush, sent by flush 1, by flush 2)
COALESCING = [
    ([1] * 50, 0.0, [], [1], []),
    ([1] * 50 + [2] * 10, 0.0, [], [1, 2], []),
    ([1], 0.5, [1, 1, 1], [1], []),  # within the interval: the change waits for the room's turn
    ([1], 1.0, [1, 1, 1], [1], [1]),
    ([1], 0.2, [2], [1], [2]),  # rooms take turns independently
    ([], 0.0, [], [], []),
]


@pytest.mark.parametrize("first, later, second, sent1, sent2", COALESCING)
def test_marks_are_coalesced_per_room_and_interval(first, later, second, sent1, sent2):
    broadcaster, sent, fake = _broadcaster()
    for tender_id in first:
        broadcaster.mark(tender_id)
    assert broadcaster.flush() == sent1
    fake.at += later
    for tender_id in second:
        broadcaster.mark(tender_id)
    assert broadcaster.flush() == sent2
    assert sent == sent1 + sent2
    assert broadcaster.pending() == set(second) - set(sent2)
    fake.at += 1.0  # a waiting room is sent once its turn comes: every list converges
    assert broadcaster.flush() == sorted(set(second) - set(sent2))
    assert broadcaster.pending() == set()


def test_a_room_whose_turn_another_process_holds_or_whose_send_fails_stays_marked():
    turns = {1: False}
    broadcaster, sent, fake = _broadcaster(claim=lambda tender_id, _s: turns.get(tender_id, True), fail={3})
    for tender_id in (1, 2, 3):
        broadcaster.mark(tender_id)
    assert broadcaster.flush() == [2]
    assert broadcaster.pending() == {1, 3}
    turns[1] = True
    fake.at += 1.0
    assert broadcaster.flush() == [1] and broadcaster.pending() == {3}
    assert broadcaster.flush(force=True) == [] and broadcaster.pending() == {3}  # still failing: kept


def test_the_timer_sends_then_stops_until_the_next_change():
    sent, done = [], threading.Event()

    def send(tender_id: int) -> None:
        sent.append(tender_id)
        done.set()

    def start(target):
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        return thread

    broadcaster = PresenceBroadcaster(send, interval=0.05, start_task=start)
    for _ in range(20):
        broadcaster.mark(9)
    assert done.wait(5)
    deadline = time.monotonic() + 5
    while broadcaster._running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sent == [9] and not broadcaster._running
    done.clear()
    broadcaster.mark(9)
    assert done.wait(5) and sent == [9, 9]
    broadcaster.stop()


def test_two_processes_share_one_turn_per_room_through_redis(settings):
    if not settings.redis_url:
        pytest.skip("needs Redis (EBID_TEST_REDIS_URL)")
    import redis

    stores = [RedisPresence(redis.Redis.from_url(settings.redis_url)) for _ in range(2)]
    stores[0]._redis.delete(f"{KEY_PREFIX}turn:424242")
    sent: list[list[int]] = [[], []]
    processes = [PresenceBroadcaster(sent[i].append, interval=0.3, claim=stores[i].claim) for i in range(2)]
    for broadcaster in processes:
        broadcaster.mark(424242)
    assert sorted(len(broadcaster.flush()) for broadcaster in processes) == [0, 1]
    waiting = next(b for b in processes if b.pending())
    time.sleep(0.35)
    assert waiting.flush() == [424242]
    assert sent[0] + sent[1] == [424242, 424242]


@pytest.fixture
def hall(kit):
    return build_hall(kit, clock)


def _current(hall) -> list[dict]:
    """The room's presence as the store has it now."""
    return presence_view(presence_store().entries(hall.tender_id), True)


def test_n_joins_send_o_n_presence_messages_and_every_list_converges(app, hall):
    people = [hall.host, hall.supervisor, *(b.person for b in hall.bidders)]
    clients = []
    for i in range(30):
        client = hall_client(app, people[i % len(people)])
        assert join(client, hall.tender_id)["ok"]
        clients.append(client)
    received = [events(client, "hall.presence") for client in clients]
    assert sum(map(len, received)) == 0  # joins only mark the room
    assert flush_presence(app) == [hall.tender_id]
    received = [events(client, "hall.presence") for client in clients]
    assert [len(r) for r in received] == [1] * 30  # N messages for N joins, not N(N+1)/2
    for [payload] in received:  # the room's first broadcast: the whole list
        assert payload["seq"] == 1 and payload["full"] is True
        assert sum(p["connections"] for p in payload["changes"]) == 30
        assert {p["role"] for p in payload["changes"]} == {"host", "supervisor", "bidder"}
    assert flush_presence(app) == []  # nothing changed since
    late = hall_client(app, hall.bidders[0].person)  # a second connection of the same name
    join(late, hall.tender_id)
    [state] = events(late, "hall.state")
    assert state["presence_seq"] == 1 and state["presence"] == received[0][0]["changes"]
    assert flush_presence(app) == [hall.tender_id]
    [delta] = events(clients[0], "hall.presence")
    count = sum(1 for i in range(30) if people[i % len(people)] == hall.bidders[0].person) + 1
    assert delta == {"tender_id": hall.tender_id, "seq": 2,
                     "changes": [{"role": "bidder", "name": hall.bidders[0].org.name, "connections": count}]}
    app.extensions[BROADCASTER].mark(hall.tender_id)  # marked, but nothing changed: nothing is sent
    assert flush_presence(app) == [] and events(clients[0], "hall.presence") == []


def test_presence_deltas_follow_join_leave_second_connection_and_disconnect(app, hall):
    a, b = hall.bidders[0].org.name, hall.bidders[1].org.name
    first, second = hall_client(app, hall.bidders[0].person), hall_client(app, hall.bidders[1].person)
    join(first, hall.tender_id)
    join(second, hall.tender_id)
    flush_presence(app)
    [delta] = events(first, "hall.presence")
    assert delta["seq"] == 1 and {p["name"] for p in delta["changes"]} == {a, b}

    second.emit("leave", {"tender_id": hall.tender_id}, namespace=NAMESPACE, callback=True)
    flush_presence(app)
    assert events(first, "hall.presence") == [
        {"tender_id": hall.tender_id, "seq": 2, "changes": [{"role": "bidder", "name": b, "connections": 0}]}]

    again = hall_client(app, hall.bidders[0].person)  # the same organisation from a second page
    join(again, hall.tender_id)
    flush_presence(app)
    assert events(first, "hall.presence")[-1]["changes"] == [{"role": "bidder", "name": a, "connections": 2}]
    again.disconnect(NAMESPACE)
    flush_presence(app)
    assert events(first, "hall.presence")[-1]["changes"] == [{"role": "bidder", "name": a, "connections": 1}]

    host = hall_client(app, hall.host)
    join(host, hall.tender_id)
    flush_presence(app)
    [delta] = events(first, "hall.presence")
    assert delta["seq"] == 5 and [(p["role"], p["connections"]) for p in delta["changes"]] == [("host", 1)]
    host.disconnect(NAMESPACE)
    flush_presence(app)
    [delta] = events(first, "hall.presence")
    assert delta["seq"] == 6 and [(p["role"], p["connections"]) for p in delta["changes"]] == [("host", 0)]


def test_a_missed_broadcast_makes_the_client_ask_for_the_state_and_converge(app, hall):
    watcher = hall_client(app, hall.host)
    join(watcher, hall.tender_id)
    watching = PresenceMirror(watcher, hall.tender_id)
    joiner = hall_client(app, hall.bidders[0].person)
    join(joiner, hall.tender_id)
    mirror = PresenceMirror(joiner, hall.tender_id)
    mirror.read()
    assert mirror.seq == 0 and mirror.view == []  # nothing broadcast yet
    assert flush_presence(app) == [hall.tender_id]
    assert [p["seq"] for p in events(joiner, "hall.presence")] == [1]  # lost on the way to the joiner
    presence_store().add(hall.tender_id, "sid-on-another-process", {"role": "bidder", "name": "第三方",
                                                                    "person_id": 0})
    app.extensions[BROADCASTER].mark(hall.tender_id)
    flush_presence(app)
    mirror.read()
    assert mirror.seqs == [2] and mirror.resyncs == 1  # 2 after 0: it asked for the state
    assert mirror.seq == 2 and mirror.view == _current(hall)
    presence_store().remove(hall.tender_id, "sid-on-another-process")
    app.extensions[BROADCASTER].mark(hall.tender_id)
    flush_presence(app)
    mirror.read()
    assert mirror.seqs == [2, 3] and mirror.resyncs == 1 and mirror.view == _current(hall)
    watching.read()  # in the room all along: every seq in turn, no request
    assert watching.seqs == [1, 2, 3] and watching.resyncs == 0 and watching.view == _current(hall)


def test_a_broadcast_during_a_join_reaches_the_joiner(app, hall, monkeypatch):
    import bidding.hall as hall_module

    watcher = hall_client(app, hall.host)
    join(watcher, hall.tender_id)
    flush_presence(app)
    original = hall_module.hall_state

    def broadcast_around_the_snapshot(tender, access):
        presence_store().add(hall.tender_id, "sid-a", {"role": "bidder", "name": "甲", "person_id": 0})
        app.extensions[BROADCASTER].mark(hall.tender_id)
        assert flush_presence(app) == [hall.tender_id]  # seq 2, before the snapshot is read
        state = original(tender, access)
        presence_store().add(hall.tender_id, "sid-b", {"role": "bidder", "name": "乙", "person_id": 0})
        app.extensions[BROADCASTER].mark(hall.tender_id)
        assert flush_presence(app) == [hall.tender_id]  # seq 3, after it
        return state
    monkeypatch.setattr(hall_module, "hall_state", broadcast_around_the_snapshot)
    joiner = hall_client(app, hall.bidders[0].person)
    join(joiner, hall.tender_id)
    monkeypatch.undo()
    mirror = PresenceMirror(joiner, hall.tender_id)
    mirror.read()
    assert mirror.seqs == [2, 3] and mirror.resyncs == 0  # 2 is already in its snapshot (ignored), 3 applied
    assert mirror.seq == 3 and mirror.view == _current(hall)


def test_the_timer_delivers_presence_within_the_interval(app, hall):
    app.config["EBID_HALL_PRESENCE_INTERVAL"] = 0.2
    clients = [hall_client(app, b.person) for b in hall.bidders]
    for client in clients:
        join(client, hall.tender_id)
    mirrors = [PresenceMirror(client, hall.tender_id) for client in clients]
    expected = {b.org.name for b in hall.bidders}
    broadcaster = app.extensions[BROADCASTER]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if broadcaster._running or broadcaster.pending():
            continue  # read while the timer is idle (the test client's queue is not thread-safe)
        for mirror in mirrors:
            mirror.read()
        if all({p["name"] for p in m.view} == expected for m in mirrors):
            break
    assert all({p["name"] for p in m.view} == expected for m in mirrors)
    assert all(len(m.seqs) <= 3 for m in mirrors)  # coalesced, not one per join
    assert app.extensions[BROADCASTER].pending() == set()


def test_a_join_that_fails_unexpectedly_is_answered(app, hall, monkeypatch):
    import bidding.hall as hall_module

    def broken(*_args, **_kwargs):
        raise OSError("too many clients already")
    monkeypatch.setattr(hall_module, "hall_state", broken)
    client = hall_client(app, hall.bidders[0].person)
    answer = join(client, hall.tender_id)
    assert answer["ok"] is False and answer["code"] == "platform_error"
    assert "operator" in answer["message"]
    monkeypatch.undo()
    assert join(client, hall.tender_id)["ok"] is True  # the failed join left nothing behind
    flush_presence(app)
    [payload] = events(client, "hall.presence")
    assert payload["changes"] == [{"role": "bidder", "name": hall.bidders[0].org.name, "connections": 1}]


def test_before_the_deadline_bidders_are_hidden_then_revealed_by_a_delta(app, kit, frozen):  # noqa: F811
    hall = build_hall(kit, clock, close=False)
    first, second = hall_client(app, hall.bidders[0].person), hall_client(app, hall.bidders[1].person)
    assert join(first, hall.tender_id)["ok"]
    join(second, hall.tender_id)
    state = events(second, "hall.state")[0]
    assert state["phase"] == "waiting" and state["bidders_public"] is False
    assert state["countdown"] == {"kind": "deadline", "end": hall.tender.bid_deadline_at.isoformat()}
    assert state["presence"] == [] and state["board"] == [] and state["checkins"] == []
    assert flush_presence(app) == []  # only bidders: nothing anyone may see changed
    assert events(first, "hall.presence") == []
    host = hall_client(app, hall.host)
    join(host, hall.tender_id)
    flush_presence(app)
    [delta] = events(first, "hall.presence")
    assert [p["role"] for p in delta["changes"]] == ["staff"] and delta["seq"] == 1
    assert [p["role"] for p in events(host, "hall.presence")[0]["changes"]] == ["staff"]

    past_deadline(hall.tender, clock)  # the bidder list is public now: the next broadcast adds the bidders
    assert first.emit("state", {"tender_id": hall.tender_id}, namespace=NAMESPACE, callback=True) == {"ok": True}
    assert [p["role"] for p in events(first, "hall.state")[0]["presence"]] == ["staff"]
    flush_presence(app)
    [delta] = events(host, "hall.presence")
    assert delta["seq"] == 2 and sorted(p["name"] for p in delta["changes"]) == sorted(
        b.org.name for b in hall.bidders[:2])
    assert {p["connections"] for p in delta["changes"]} == {1}
