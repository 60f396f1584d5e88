"""The scoring room's Socket.IO namespace /room: who enters, the state on joining, drafts that survive a
dropped connection, live progress without values, read-only supervisors, presence, the bidder's side."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from core.db import db
from core.identity.models import OrganisationKind
from core.realtime import socketio
from evaluation import room_flow
from evaluation.pool_models import CommitteeMember, MemberStatus
from evaluation.room_events import NAMESPACE
from evaluation.room_models import ScoreSheet
from evaluation.room_socket import PRESENCE_PREFIX, PRESENCE_STORE
from tests.bidding.hall_support import login_client, token_for
from tests.evaluation.room_support import *  # noqa: F403  (make_room and the fixtures it needs)
from tests.evaluation.room_support import room_snapshot


class RoomClient:
    """A Socket.IO test client of /room whose every call runs in its own app context, as in production."""

    def __init__(self, app, person=None, *, token: str | None = None) -> None:
        self.app = app
        flask_client = login_client(app, person) if person is not None else app.test_client()
        with app.app_context():
            self.client = socketio.test_client(app, namespace=NAMESPACE, flask_test_client=flask_client,
                                               auth={"token": token} if token else None)

    @property
    def connected(self) -> bool:
        return self.client.is_connected(NAMESPACE)

    def call(self, event: str, data: Any) -> dict[str, Any]:
        with self.app.app_context():
            return self.client.emit(event, data, namespace=NAMESPACE, callback=True)

    def join(self, evaluation_id: int) -> dict[str, Any]:
        return self.call("join", {"evaluation_id": evaluation_id})

    def act(self, evaluation_id: int, name: str, **args) -> dict[str, Any]:
        return self.call("action", {"evaluation_id": evaluation_id, "name": name, **args})

    def events(self, name: str) -> list[dict[str, Any]]:
        return [r["args"][0] for r in self.client.get_received(NAMESPACE) if r["name"] == name]

    def received(self) -> list[dict[str, Any]]:
        return self.client.get_received(NAMESPACE)

    def disconnect(self) -> None:
        with self.app.app_context():
            self.client.disconnect(NAMESPACE)

    def reconnect(self) -> None:
        with self.app.app_context():
            self.client.connect(namespace=NAMESPACE)


@pytest.fixture(autouse=True)
def clean_presence(app, settings):
    """Forget presence records of earlier tests (evaluation ids repeat on PostgreSQL; Redis outlives tests)."""
    def wipe():
        app.extensions.pop(PRESENCE_STORE, None)
        if settings.redis_url:
            import redis

            r = redis.Redis.from_url(settings.redis_url)
            keys = list(r.scan_iter(f"{PRESENCE_PREFIX}*"))
            if keys:
                r.delete(*keys)
    wipe()
    yield
    wipe()


@pytest.fixture
def r(make_room):
    return make_room(experts=3, bidders=3)


def scored(r, high: bool = False) -> tuple[dict[str, str], dict[str, str]]:
    """A complete sheet for the room's criteria (pass everything, mid or top scores) and no comments."""
    values = {c["code"]: ("pass" if c["kind"] == "pass_fail" else (c["max"] if high else c["min"]))
              for c in r.evaluation.criteria}
    return values, {}


def first_score(r) -> dict[str, Any]:
    return next(c for c in r.evaluation.criteria if c["kind"] == "score")


def test_a_connection_without_login_or_with_a_bad_token_is_refused(app, r):
    assert not RoomClient(app).connected
    assert not RoomClient(app, token="ebid_" + "x" * 43).connected


def test_outsiders_connect_but_may_not_join(app, r, create_org, create_person):
    bidder = r.bidders[0].person
    stranger = create_person(roles=("bidder",), organisation=create_org(kind=OrganisationKind.COMPANY))
    db.session.commit()
    for person in (bidder, r.host, stranger):
        client = RoomClient(app, person)
        assert client.connected
        answer = client.join(r.evaluation_id)
        assert answer["ok"] is False and answer["code"] == "not_in_room", person.name
        assert "state" not in answer
        assert client.act(r.evaluation_id, "save_sheet", bid_opening_id=r.bid_ids[0], values={})["code"] == "not_joined"


def test_an_expert_not_signed_in_may_not_join(app, make_room):
    r = make_room(experts=3, bidders=3, signed_in=False)
    r.sign_in(0, 1)
    assert RoomClient(app, r.experts[0]).join(r.evaluation_id)["ok"] is True
    answer = RoomClient(app, r.experts[2]).join(r.evaluation_id)
    assert answer["ok"] is False and answer["code"] == "not_in_room"


def test_a_member_joins_by_api_token_and_gets_the_state(app, r):
    client = RoomClient(app, token=token_for(r.experts[1]))
    assert client.connected
    answer = client.join(r.evaluation_id)
    assert answer["ok"] is True
    state = answer["state"]
    assert state["evaluation_id"] == r.evaluation_id and state["status"] == "scoring"
    assert state["viewer"]["member_id"] == r.member_ids[1] and state["viewer"]["read_only"] is False
    assert [b["bid_opening_id"] for b in state["bids"] if b["evaluated"]] == r.bid_ids
    assert {m["member_id"] for m in state["members"]} == set(r.member_ids)
    me = next(m for m in state["members"] if m["member_id"] == r.member_ids[1])
    assert me["present"] is True  # the joiner counts as present in its own state
    assert [p["person_id"] for p in answer["presence"]["present"]] == [r.experts[1].id]


def test_state_on_join_includes_own_drafts(app, r):
    member = RoomClient(app, r.experts[0])
    assert member.join(r.evaluation_id)["ok"]
    code = first_score(r)["code"]
    saved = member.act(r.evaluation_id, "save_sheet", bid_opening_id=r.bid_ids[0], values={code: "3", "F1": "pass"},
                       comments={"F1": "seal present"}, revision=None)
    assert saved["ok"] is True and saved["sheet"]["revision"] == 1
    again = member.act(r.evaluation_id, "save_sheet", bid_opening_id=r.bid_ids[0], values={"F2": "fail"},
                       comments={"F2": "format wrong"}, revision=1)
    assert again["ok"] is True and again["sheet"]["revision"] == 2

    other_tab = RoomClient(app, r.experts[0])
    state = other_tab.join(r.evaluation_id)["state"]
    [sheet] = [s for s in state["sheets"] if s["member_id"] == r.member_ids[0]]
    assert sheet["values"] == {code: "3", "F1": "pass", "F2": "fail"}
    assert sheet["comments"] == {"F1": "seal present", "F2": "format wrong"}
    assert sheet["revision"] == 2 and sheet["submitted"] is False


def test_a_dropped_connection_loses_nothing_typed(app, r):
    member = RoomClient(app, r.experts[0])
    assert member.join(r.evaluation_id)["ok"]
    code = first_score(r)["code"]
    for revision, value in ((None, "1"), (1, "2.5")):
        assert member.act(r.evaluation_id, "save_sheet", bid_opening_id=r.bid_ids[1], values={code: value},
                          revision=revision)["ok"]
    member.disconnect()
    assert not member.connected
    member.reconnect()
    assert member.connected
    state = member.join(r.evaluation_id)["state"]
    [sheet] = [s for s in state["sheets"] if s["bid_opening_id"] == r.bid_ids[1]]
    assert sheet["values"] == {code: "2.5"} and sheet["revision"] == 2
    # the stale tab's revision is refused, and nothing changes
    stale = member.act(r.evaluation_id, "save_sheet", bid_opening_id=r.bid_ids[1], values={code: "1"}, revision=1)
    assert stale["ok"] is False and stale["code"] == "stale_revision"
    db.session.expire_all()
    assert db.session.get(ScoreSheet, _sheet_id(r, 0, r.bid_ids[1])).values == {code: "2.5"}


def _sheet_id(r, i: int, bid_id: int) -> int:
    return db.session.scalar(select(ScoreSheet.id).where(ScoreSheet.member_id == r.member_ids[i],
                                                         ScoreSheet.bid_opening_id == bid_id))


def test_progress_reaches_the_others_without_the_values(app, r):
    clients = [RoomClient(app, p) for p in r.experts[:2]]
    supervisor = RoomClient(app, r.supervisor)
    for c in (*clients, supervisor):
        assert c.join(r.evaluation_id)["ok"]
        c.received()
    code = first_score(r)["code"]
    assert clients[0].act(r.evaluation_id, "save_sheet", bid_opening_id=r.bid_ids[0],
                          values={code: "3.71", "F1": "pass"})["ok"]
    for c in (clients[1], supervisor):
        received = c.received()
        progress = [e["args"][0] for e in received if e["name"] == "room.progress"]
        assert progress and progress[-1]["member_id"] == r.member_ids[0]
        assert progress[-1]["bid_opening_id"] == r.bid_ids[0]
        assert progress[-1]["filled"] == 2 and progress[-1]["total"] == len(r.evaluation.criteria)
        assert progress[-1]["submitted"] is False
        assert not any(e["name"] == "room.sheet" for e in received)
        # no value travels with the progress (3.71 appears nowhere else in the payloads)
        assert "3.71" not in repr([e["args"] for e in received]) and "values" not in repr(received)
    # the other member's state has the progress, not the sheet; the supervisor reads the draft
    state = clients[1].call("state", {"evaluation_id": r.evaluation_id})["state"]
    assert [s for s in state["sheets"] if s["member_id"] == r.member_ids[0]] == []
    assert {(p["member_id"], p["filled"]) for p in state["progress"]} == {(r.member_ids[0], 2)}
    sup_state = supervisor.call("state", {"evaluation_id": r.evaluation_id})["state"]
    assert [s["values"] for s in sup_state["sheets"]] == [{code: "3.71", "F1": "pass"}]


def test_a_submitted_sheet_shows_to_another_member_once_both_submitted(app, r):
    a, b = RoomClient(app, r.experts[0]), RoomClient(app, r.experts[1])
    for c in (a, b):
        assert c.join(r.evaluation_id)["ok"]
    values, _ = scored(r)
    bid = r.bid_ids[0]
    for c in (a, b):
        assert c.act(r.evaluation_id, "save_sheet", bid_opening_id=bid, values=values)["ok"]
    assert a.act(r.evaluation_id, "submit_sheet", bid_opening_id=bid)["ok"]
    assert [s for s in b.call("state", {"evaluation_id": r.evaluation_id})["state"]["sheets"]
            if s["member_id"] == r.member_ids[0]] == []
    b.received()
    submitted = b.act(r.evaluation_id, "submit_sheet", bid_opening_id=bid)
    assert submitted["ok"] is True and submitted["sheet"]["submitted"] is True
    theirs = [s for s in b.call("state", {"evaluation_id": r.evaluation_id})["state"]["sheets"]
              if s["member_id"] == r.member_ids[0]]
    assert [s["values"] for s in theirs] == [values]


def test_a_supervisor_reads_but_writes_nothing_except_suspend_and_resume(app, r):
    supervisor, member = RoomClient(app, r.supervisor), RoomClient(app, r.experts[0])
    answer = supervisor.join(r.evaluation_id)
    assert answer["ok"] is True and answer["state"]["viewer"]["read_only"] is True
    assert member.join(r.evaluation_id)["ok"]
    values, _ = scored(r)
    before = room_snapshot()
    for name, args in (("save_sheet", {"bid_opening_id": r.bid_ids[0], "values": values}),
                       ("submit_sheet", {"bid_opening_id": r.bid_ids[0]}),
                       ("vote_chair", {"candidate_id": r.member_ids[0]}),
                       ("ask_clarification", {"bid_opening_id": r.bid_ids[0], "question": "?", "minutes": 30}),
                       ("raise_dispute", {"bid_opening_id": r.bid_ids[0], "criterion": "F1", "reason": "x"}),
                       ("write_summary", {"text": "summary"}), ("complete", {})):
        refused = supervisor.act(r.evaluation_id, name, **args)
        assert refused["ok"] is False and refused["code"] == "read_only", name
    assert room_snapshot() == before
    assert member.act(r.evaluation_id, "suspend", reason="x")["code"] == "supervisor_required"

    member.received()
    assert supervisor.act(r.evaluation_id, "suspend", reason="video feed lost at venue B")["ok"] is True
    status = member.events("room.status")
    assert status and status[-1]["status"] == "suspended" and status[-1]["reason"] == "video feed lost at venue B"
    refused = member.act(r.evaluation_id, "save_sheet", bid_opening_id=r.bid_ids[0], values=values)
    assert refused["ok"] is False and refused["code"] == "suspended"
    state = member.call("state", {"evaluation_id": r.evaluation_id})["state"]
    assert state["status"] == "suspended" and state["reason"] == "video feed lost at venue B"
    assert supervisor.act(r.evaluation_id, "resume")["ok"] is True
    assert member.events("room.status")[-1]["status"] == "scoring"
    assert member.act(r.evaluation_id, "save_sheet", bid_opening_id=r.bid_ids[0], values=values)["ok"] is True


def test_refusals_are_answered_and_change_nothing(app, r):
    member = RoomClient(app, r.experts[0])
    assert member.join(r.evaluation_id)["ok"]
    top = first_score(r)
    before = room_snapshot()
    too_high = member.act(r.evaluation_id, "save_sheet", bid_opening_id=r.bid_ids[0],
                          values={"F1": "pass", top["code"]: str(int(float(top["max"])) + 1)})
    assert too_high["ok"] is False and too_high["code"] == "validation_failed" and too_high["message"]
    assert member.act(r.evaluation_id, "save_sheet", bid_opening_id=r.failed_bid_ids[0], values={})["ok"] is False
    assert member.act(r.evaluation_id, "submit_sheet", bid_opening_id=r.bid_ids[0])["ok"] is False
    assert member.act(r.evaluation_id, "fly", bid_opening_id=r.bid_ids[0])["code"] == "unknown_action"
    assert member.act(r.evaluation_id, "save_sheet", bid_opening_id="x", values={})["code"] == "bid_opening_id_required"
    assert member.act(r.evaluation_id, "save_sheet", bid_opening_id=r.bid_ids[0], values=["F1"])["code"] == \
        "invalid_sheet"
    assert member.call("action", "nonsense")["code"] == "action_required"
    assert room_snapshot() == before


def test_presence_follows_joins_and_disconnects(app, r):
    a, b = RoomClient(app, r.experts[0]), RoomClient(app, r.experts[1])
    assert a.join(r.evaluation_id)["ok"]
    a.received()
    assert b.join(r.evaluation_id)["ok"]
    [presence] = a.events("room.presence")
    assert {p["member_id"] for p in presence["present"]} == {r.member_ids[0], r.member_ids[1]}
    b.disconnect()
    [presence] = a.events("room.presence")
    assert [p["member_id"] for p in presence["present"]] == [r.member_ids[0]]
    members = a.call("state", {"evaluation_id": r.evaluation_id})["state"]["members"]
    assert {m["member_id"] for m in members if m["present"]} == {r.member_ids[0]}


def test_chair_vote_and_clarification_round_trip_with_the_bidder(app, r):
    members = [RoomClient(app, p) for p in r.experts]
    for c in members:
        assert c.join(r.evaluation_id)["ok"]
    for c in members[:2]:
        assert c.act(r.evaluation_id, "vote_chair", candidate_id=r.member_ids[2])["ok"]
    assert members[2].call("state", {"evaluation_id": r.evaluation_id})["state"]["chair"]["chair_member_id"] == \
        r.member_ids[2]

    bid = r.bid_ids[0]
    bidder = r.bidder_of(bid)
    page = RoomClient(app, bidder.person)
    watched = page.call("watch_clarifications", {"tender_id": r.tender_id})
    assert watched == {"ok": True, "clarifications": []}
    assert RoomClient(app, r.experts[0]).call("watch_clarifications", {"tender_id": r.tender_id})["code"] == \
        "bidder_required"
    other = RoomClient(app, r.bidder_of(r.bid_ids[1]).person)
    assert other.call("watch_clarifications", {"tender_id": r.tender_id})["ok"] is True

    asked = members[0].act(r.evaluation_id, "ask_clarification", bid_opening_id=bid,
                           question="请说明项目经理的在建项目情况。", minutes=20)
    assert asked["ok"] is True
    [pushed] = page.events("room.clarification")
    assert pushed["id"] == asked["clarification_id"] and pushed["question"] == "请说明项目经理的在建项目情况。"
    assert pushed["status"] == "open" and "asked_by" not in pushed  # the expert stays anonymous to the bidder
    assert other.events("room.clarification") == []  # only the bidder asked
    assert any(e["id"] == asked["clarification_id"] for e in members[1].events("room.clarification"))


def test_a_member_recused_meanwhile_is_refused_and_hears_no_more(app, r):
    a, b = RoomClient(app, r.experts[0]), RoomClient(app, r.experts[1])
    for c in (a, b):
        assert c.join(r.evaluation_id)["ok"]
    member = db.session.get(CommitteeMember, r.member_ids[1])
    member.status, member.recusal_reason = MemberStatus.RECUSED, "former employee of a bidder"
    db.session.flush()
    room_flow.members_changed(r.evaluation_id)
    db.session.commit()
    b.received()
    code = first_score(r)["code"]
    refused = b.act(r.evaluation_id, "save_sheet", bid_opening_id=r.bid_ids[0], values={code: "1"})
    assert refused["ok"] is False and refused["code"] == "not_in_room"
    assert a.act(r.evaluation_id, "save_sheet", bid_opening_id=r.bid_ids[0], values={code: "1"})["ok"]
    assert b.received() == []  # out of the room: no progress, no presence
    assert b.call("state", {"evaluation_id": r.evaluation_id})["code"] == "not_joined"
    presence = a.events("room.presence")[-1]
    assert [p["member_id"] for p in presence["present"]] == [r.member_ids[0]]
