"""The hall's pure rules: who enters as what, what the snapshot hides, presence records (memory and Redis)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from bidding.hall_presence import STALE_AFTER, MemoryPresence, RedisPresence
from bidding.hall_state import (
    CHECK_IN,
    DECIDE_FAILURE,
    HOST_ACTIONS,
    Access,
    AccessFacts,
    apply_presence_changes,
    bidders_public,
    board_row,
    checkins_view,
    countdown,
    draw_view,
    hall_access,
    phase_of,
    presence_changes,
    presence_view,
    snapshot,
)

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
ORGS = ((7, "青岛路桥"), (9, "山东建工"))


@pytest.mark.parametrize("facts, org, expected", [
    (AccessFacts("opening", participant_role="host", manages=True), None, ("host", "Tenderer Co", None, HOST_ACTIONS)),
    (AccessFacts("opening", participant_role="supervisor", supervisor_role=True), None,
     ("supervisor", "李监督", None, {DECIDE_FAILURE})),
    (AccessFacts("opening", manages=True), None, ("staff", "Tenderer Co", None, set())),
    (AccessFacts("opening", supervisor_role=True), None, ("supervisor", "李监督", None, set())),
    (AccessFacts("opening", custodian=True), None, ("custodian", "李监督", None, set())),
    (AccessFacts("opening", bidder_orgs=ORGS[:1]), None, ("bidder", "青岛路桥", 7, {CHECK_IN})),
    (AccessFacts("opening", bidder_orgs=ORGS), 9, ("bidder", "山东建工", 9, {CHECK_IN})),
    (AccessFacts("published", bidder_orgs=ORGS[:1]), None, ("bidder", "青岛路桥", 7, {CHECK_IN})),
    (AccessFacts("opening", bidder_orgs=ORGS), None, None),  # several organisations: must choose
    (AccessFacts("opening", bidder_orgs=ORGS[:1]), 9, None),  # not a member with a bid
    (AccessFacts("opening"), None, None),  # a bidder without a bid, or anyone else
    (AccessFacts("draft", participant_role="host", manages=True), None, None),
])
def test_hall_access(facts, org, expected):
    access = hall_access(facts, "李监督", org, "Tenderer Co" if facts.manages else None)
    if expected is None:
        assert access is None
    else:
        role, name, org_id, actions = expected
        assert (access.role, access.name, access.organisation_id, set(access.actions)) == (role, name, org_id, actions)
        assert access.read_only is (not actions)


@pytest.mark.parametrize("status, deadline, at, public", [
    ("published", T0, T0 - timedelta(seconds=1), False),
    ("published", T0, T0, True),  # the deadline passed; the scheduler has not closed the tender yet
    ("opening", T0, T0 - timedelta(days=1), True),
    ("failed", None, T0, True),
    ("published", None, T0, False),
])
def test_bidders_public(status, deadline, at, public):
    assert bidders_public(status, deadline, at) is public


def test_presence_groups_connections_hides_bidders_before_the_deadline_and_orders_by_role():
    entries = [{"role": "bidder", "name": "B"}, {"role": "bidder", "name": "A"}, {"role": "bidder", "name": "B"},
               {"role": "supervisor", "name": "李"}, {"role": "host", "name": "T"}]
    assert presence_view(entries, True) == [
        {"role": "host", "name": "T", "connections": 1}, {"role": "supervisor", "name": "李", "connections": 1},
        {"role": "bidder", "name": "A", "connections": 1}, {"role": "bidder", "name": "B", "connections": 2}]
    assert [p["role"] for p in presence_view(entries, False)] == ["host", "supervisor"]


def _row(role, name, n):
    return {"role": role, "name": name, "connections": n}


# (view before, view after, the delta between them)
DELTAS = [
    ([], [], []),
    ([], [_row("bidder", "A", 1)], [_row("bidder", "A", 1)]),  # a join
    ([_row("bidder", "A", 1)], [], [_row("bidder", "A", 0)]),  # a leave: 0 means gone
    ([_row("bidder", "A", 1)], [_row("bidder", "A", 2)], [_row("bidder", "A", 2)]),  # a second connection
    ([_row("bidder", "A", 2)], [_row("bidder", "A", 1)], [_row("bidder", "A", 1)]),
    ([_row("host", "T", 1), _row("bidder", "A", 1)], [_row("host", "T", 1), _row("bidder", "A", 1)], []),
    ([_row("bidder", "B", 1), _row("host", "T", 1)],  # in the view's order: role, then name
     [_row("host", "T", 1), _row("supervisor", "李", 1), _row("bidder", "A", 1)],
     [_row("supervisor", "李", 1), _row("bidder", "A", 1), _row("bidder", "B", 0)]),
    ([_row("staff", "T", 1)],  # the deadline passed: the bidders appear
     presence_view([{"role": "staff", "name": "T"}, {"role": "bidder", "name": "B"},
                    {"role": "bidder", "name": "A"}], True),
     [_row("bidder", "A", 1), _row("bidder", "B", 1)]),
]


@pytest.mark.parametrize("before, after, delta", DELTAS)
def test_presence_changes_and_their_application(before, after, delta):
    assert presence_changes(before, after) == delta
    assert apply_presence_changes(before, delta) == after
    assert apply_presence_changes(apply_presence_changes(before, delta), delta) == after  # absolute: idempotent
    assert apply_presence_changes([], after) == after and presence_view(after, True) == after


def test_a_stored_view_is_filtered_again_before_the_deadline():
    view = [_row("host", "T", 1), _row("bidder", "A", 2)]
    assert presence_view(view, False) == [_row("host", "T", 1)]
    assert presence_view(view, True) == view


FORM = {"price": "12345678.90", "duration_days": 365, "project_manager": {"name": "张伟"}}


@pytest.mark.parametrize("status, shows_form", [("pending", False), ("failed", False), ("decrypted", True)])
def test_a_board_row_carries_the_content_only_after_decryption(status, shows_form):
    row = {"id": 1, "lot": "L1", "bidder": "A", "status": status, "method": "bidder", "failure": None,
           "decrypted_at": "2026-03-02T01:00:00+00:00", "form": FORM, "plaintext_sha256": "ab" * 32}
    out = board_row(row)
    assert (out["form"] == FORM) is shows_form and (out["form"] is None) is not shows_form
    assert "plaintext_sha256" not in out  # only the listed keys


@pytest.mark.parametrize("seed, result, shown", [(None, None, False), ("aa", None, False), ("aa", "0.95", True)])
def test_a_draw_shows_seed_and_result_only_once_drawn(seed, result, shown):
    out = draw_view({"name": "K", "choices": ["0.95", "0.97"], "commitment": "c", "commit_index": 3,
                     "seed": seed, "result": result, "reveal_index": 4 if result else None})
    assert out["commitment"] == "c"
    assert (out["seed"], out["result"]) == ((seed, result) if shown else (None, None))


def test_check_ins_of_other_bidders_are_hidden_before_the_deadline():
    rows = [{"organisation_id": 7, "organisation": "A", "at": "t1"}, {"organisation_id": 9, "organisation": "B",
                                                                       "at": "t2"}]
    assert [c["organisation"] for c in checkins_view(rows, True, None)] == ["A", "B"]
    assert [c["organisation"] for c in checkins_view(rows, False, 9)] == ["B"]
    assert checkins_view(rows, False, None) == []


@pytest.mark.parametrize("status, session_phase, at, phase", [
    ("published", None, T0 - timedelta(minutes=1), "waiting"),
    ("published", None, T0, "checkin"),
    ("opening", None, T0, "checkin"),
    ("opening", "decrypting", T0, "decrypting"),
    ("failed", None, T0, "failed"),
    ("cancelled", None, T0 - timedelta(days=1), "cancelled"),
])
def test_phase(status, session_phase, at, phase):
    assert phase_of(status, session_phase, T0, at) == phase


def test_countdown_runs_to_the_deadline_then_to_the_window_end():
    end = T0 + timedelta(minutes=30)
    assert countdown("waiting", T0, None) == {"kind": "deadline", "end": T0.isoformat()}
    assert countdown("decrypting", T0, end) == {"kind": "decryption", "end": end.isoformat()}
    assert countdown("checkin", T0, None) is None and countdown("decrypted", T0, end) is None


def test_snapshot_before_the_deadline_shows_nothing_of_the_bidders():
    access = Access("bidder", "A", 7, frozenset({CHECK_IN}))
    state = snapshot(tender={"id": 1, "code": "ZB1", "title": "t", "status": "published", "deadline": T0, "mode": "bidder"},
                     session=None, access=access, at=T0 - timedelta(hours=1),
                     board=[{"id": 1, "status": "decrypted", "form": FORM, "bidder": "B"}],
                     presence=[{"role": "bidder", "name": "B"}, {"role": "staff", "name": "T"}],
                     checkins=[{"organisation_id": 9, "organisation": "B", "at": "t"}])
    assert state["phase"] == "waiting" and state["bidders_public"] is False
    assert state["board"] == [] and state["checkins"] == [] and state["presence"] == [
        {"role": "staff", "name": "T", "connections": 1}]
    assert state["you"] == {"role": "bidder", "name": "A", "organisation_id": 7, "actions": [CHECK_IN],
                            "read_only": False}
    assert state["server_time"] == (T0 - timedelta(hours=1)).isoformat()


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _stores(clock):
    yield MemoryPresence(clock)
    url = os.environ.get("EBID_TEST_REDIS_URL")
    if url:
        import redis

        client = redis.Redis.from_url(url)
        client.delete(RedisPresence.key(987654))
        yield RedisPresence(client, clock)


def test_presence_stores_add_touch_remove_and_drop_stale_records():
    clock = FakeClock()
    for store in _stores(clock):
        store.add(987654, "s1", {"role": "bidder", "name": "A"})
        store.add(987654, "s2", {"role": "host", "name": "T"})
        assert sorted(e["name"] for e in store.entries(987654)) == ["A", "T"]
        clock.t += STALE_AFTER - 1
        store.touch(987654, "s1")
        clock.t += 2  # s2 was not refreshed: its process died without a disconnect
        assert [e["name"] for e in store.entries(987654)] == ["A"]
        assert store.remove(987654, "s1") is True and store.remove(987654, "s1") is False
        assert store.entries(987654) == []


def test_presence_stores_keep_the_last_broadcast_view_and_its_seq():
    for store in _stores(FakeClock()):
        if isinstance(store, RedisPresence):
            store._redis.delete(store.sent_key(987654))
        assert store.sent(987654) == (0, [])
        view = [_row("host", "T", 1)]
        assert store.record_sent(987654, 1, view) is True
        assert store.record_sent(987654, 1, []) is False  # another send recorded 1 meanwhile
        assert store.record_sent(987654, 3, []) is False
        assert store.sent(987654) == (1, view)
        assert store.record_sent(987654, 2, []) is True and store.sent(987654) == (2, [])
        if isinstance(store, RedisPresence):
            store._redis.delete(store.sent_key(987654))


@pytest.mark.skipif(not os.environ.get("EBID_TEST_REDIS_URL"), reason="needs EBID_TEST_REDIS_URL")
def test_two_web_processes_see_one_room_through_redis():
    import redis

    url = os.environ["EBID_TEST_REDIS_URL"]
    first, second = RedisPresence.from_url(url), RedisPresence.from_url(url)  # two processes, two connections
    redis.Redis.from_url(url).delete(RedisPresence.key(987655))
    first.add(987655, "sid-on-process-1", {"role": "bidder", "name": "A"})
    second.add(987655, "sid-on-process-2", {"role": "supervisor", "name": "李"})
    assert sorted(e["name"] for e in first.entries(987655)) == sorted(e["name"] for e in second.entries(987655)) \
        == ["A", "李"]
    assert second.remove(987655, "sid-on-process-1") is True  # a disconnect handled anywhere
    assert [e["name"] for e in first.entries(987655)] == ["李"]
    second.remove(987655, "sid-on-process-2")
