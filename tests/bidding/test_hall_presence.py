"""Presence in the opening hall (在线名单): coalesced broadcasts, O(N) messages for N joins, convergence."""

from __future__ import annotations

import threading
import time

import pytest

from bidding.hall import BROADCASTER
from bidding.hall_broadcast import PresenceBroadcaster
from bidding.hall_events import NAMESPACE
from bidding.hall_presence import KEY_PREFIX, RedisPresence
from core.clock import clock
from tests.bidding.conftest import api_as, frozen  # noqa: F401  (fixtures of the kit)
from tests.bidding.hall_support import (  # noqa: F401  (clean_presence is a fixture)
    build_hall,
    clean_presence,
    events,
    flush_presence,
    hall_client,
    join,
)
from tests.bidding.sealed_support import kit_fixture  # noqa: F401  (the kit fixture)

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


def test_n_joins_send_o_n_presence_messages_and_every_list_converges(app, hall):
    people = [hall.host, hall.supervisor, *(b.person for b in hall.bidders)]
    clients = []
    for i in range(30):
        client = hall_client(app, people[i % len(people)])
        assert join(client, hall.tender_id)["ok"]
        clients.append(client)
    received = [events(client, "hall.presence") for client in clients]
    assert sum(map(len, received)) == 0  # joins only mark the room; each joiner has its own snapshot
    assert flush_presence(app) == [hall.tender_id]
    received = [events(client, "hall.presence") for client in clients]
    assert [len(r) for r in received] == [1] * 30  # N messages for N joins, not N(N+1)/2
    for [payload] in received:
        assert sum(p["connections"] for p in payload["presence"]) == 30
        assert {p["role"] for p in payload["presence"]} == {"host", "supervisor", "bidder"}
    assert flush_presence(app) == []  # nothing changed since


def test_presence_follows_join_leave_and_disconnect(app, hall):
    first, second = hall_client(app, hall.bidders[0].person), hall_client(app, hall.bidders[1].person)
    join(first, hall.tender_id)
    join(second, hall.tender_id)
    flush_presence(app)
    names = {p["name"] for p in events(first, "hall.presence")[-1]["presence"]}
    assert names == {hall.bidders[0].org.name, hall.bidders[1].org.name}

    second.emit("leave", {"tender_id": hall.tender_id}, namespace=NAMESPACE, callback=True)
    flush_presence(app)
    assert [p["name"] for p in events(first, "hall.presence")[-1]["presence"]] == [hall.bidders[0].org.name]

    host = hall_client(app, hall.host)
    join(host, hall.tender_id)
    flush_presence(app)
    assert {p["role"] for p in events(first, "hall.presence")[-1]["presence"]} == {"host", "bidder"}
    host.disconnect(NAMESPACE)
    flush_presence(app)
    assert [p["role"] for p in events(first, "hall.presence")[-1]["presence"]] == ["bidder"]


def test_the_timer_delivers_presence_within_the_interval(app, hall):
    app.config["EBID_HALL_PRESENCE_INTERVAL"] = 0.2
    clients = [hall_client(app, b.person) for b in hall.bidders]
    for client in clients:
        join(client, hall.tender_id)
    expected = {b.org.name for b in hall.bidders}
    seen: dict[int, list] = {i: [] for i in range(len(clients))}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for i, client in enumerate(clients):
            seen[i] += events(client, "hall.presence")
        if all(s and {p["name"] for p in s[-1]["presence"]} == expected for s in seen.values()):
            break
        time.sleep(0.05)
    assert all({p["name"] for p in s[-1]["presence"]} == expected for s in seen.values())
    assert all(len(s) <= 3 for s in seen.values())  # coalesced, not one per join
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
    assert payload["presence"][0]["connections"] == 1


def test_before_the_deadline_bidders_see_no_other_bidder(app, kit):
    hall = build_hall(kit, clock, close=False)
    first, second = hall_client(app, hall.bidders[0].person), hall_client(app, hall.bidders[1].person)
    assert join(first, hall.tender_id)["ok"]
    join(second, hall.tender_id)
    state = events(second, "hall.state")[0]
    assert state["phase"] == "waiting" and state["bidders_public"] is False
    assert state["countdown"] == {"kind": "deadline", "end": hall.tender.bid_deadline_at.isoformat()}
    assert state["presence"] == [] and state["board"] == [] and state["checkins"] == []
    flush_presence(app)
    assert events(first, "hall.presence")[-1]["presence"] == []
    host = hall_client(app, hall.host)
    join(host, hall.tender_id)
    assert [p["role"] for p in events(host, "hall.state")[0]["presence"]] == ["staff"]
