"""Who enters the scoring room, and what each viewer sees of it."""

from __future__ import annotations

import json
from datetime import timedelta

from bidding.opening_models import OpeningParticipant, ParticipantRole
from core.clock import clock
from core.db import db
from evaluation import room
from evaluation.pool_models import CommitteeMember, MemberStatus
from evaluation.room_state import room_access, room_state
from tests.evaluation.room_support import *  # noqa: F403
from tests.evaluation.room_support import FULL_SHEET


def _state(r, who):
    """The state for an expert index or a person."""
    person_id = r.experts[who].id if isinstance(who, int) else who.id
    return room_state(r.evaluation_id, room_access(person_id, r.evaluation_id))


def _sheets(state) -> dict[tuple[int, int], dict]:
    return {(s["member_id"], s["bid_opening_id"]): s for s in state["sheets"]}


def test_members_and_supervisors_enter(make_room, create_person):
    r = make_room()
    member = room_access(r.experts[2].id, r.evaluation_id)
    assert (member.role, member.member_id, member.tender_id, member.name) == \
        ("member", r.member_ids[2], r.tender_id, r.experts[2].name)
    sup = room_access(r.supervisor.id, r.evaluation_id)
    assert (sup.role, sup.member_id) == ("supervisor", None)
    named = create_person()  # no supervisor role, but named supervisor of this tender's opening
    db.session.add(OpeningParticipant(tender_id=r.tender_id, person_id=named.id, role=ParticipantRole.SUPERVISOR,
                                      named_by_id=r.host.id))
    db.session.commit()
    assert room_access(named.id, r.evaluation_id).role == "supervisor"


def test_outsiders_get_no_access(make_room, create_person):
    r = make_room(experts=5, signed_in=False)
    r.sign_in(0, 1, 2, 3)
    recused = db.session.get(CommitteeMember, r.member_ids[3])
    recused.status = MemberStatus.RECUSED
    db.session.commit()
    outsiders = [r.bidders[0].person, r.host, r.experts[4], r.experts[3], create_person(roles=("expert",)),
                 create_person(roles=("admin",))]
    assert [room_access(p.id, r.evaluation_id) for p in outsiders] == [None] * len(outsiders)
    assert room_access(None, r.evaluation_id) is None
    assert room_access(r.experts[0].id, 999999) is None


def test_another_members_sheet_is_hidden_until_both_submitted(make_room):
    r = make_room(experts=5)
    a, b = r.bid_ids
    room.save_sheet(r.member_actor(0), r.evaluation_id, a, FULL_SHEET)
    room.submit_sheet(r.member_actor(0), r.evaluation_id, a)
    room.save_sheet(r.member_actor(1), r.evaluation_id, a, {"T1": "3.75"})
    db.session.commit()
    m0, m1 = r.member_ids[0], r.member_ids[1]
    seen_by_1 = _state(r, 1)
    assert set(_sheets(seen_by_1)) == {(m1, a)}  # only its own draft, not member 0's submitted sheet
    assert {(p["member_id"], p["bid_opening_id"]): (p["filled"], p["submitted"]) for p in seen_by_1["progress"]} == \
        {(m0, a): (11, True), (m1, a): (1, False)}  # progress is visible to all
    assert set(_sheets(_state(r, 0))) == {(m0, a)}  # member 1's draft stays private too
    assert "3.75" not in json.dumps(_state(r, 0)) and "3.75" in json.dumps(_state(r, 1))
    room.save_sheet(r.member_actor(1), r.evaluation_id, a, FULL_SHEET)
    room.submit_sheet(r.member_actor(1), r.evaluation_id, a)
    room.save_sheet(r.member_actor(0), r.evaluation_id, b, {"T1": "9"})
    db.session.commit()
    assert _sheets(_state(r, 1))[(m0, a)]["values"] == FULL_SHEET
    assert set(_sheets(_state(r, 0))) == {(m0, a), (m1, a), (m0, b)}
    assert set(_sheets(_state(r, 1))) == {(m0, a), (m1, a)}  # member 0's draft of bid b stays private
    assert set(_sheets(_state(r, 2))) == set()  # member 2 has submitted nothing


def test_supervisor_reads_every_sheet_drafts_included(make_room):
    r = make_room()
    room.save_sheet(r.member_actor(0), r.evaluation_id, r.bid_ids[0], {"T1": "4"}, {"T1": "thin plan"})
    db.session.commit()
    state = _state(r, r.supervisor)
    assert state["viewer"]["read_only"] is True and state["viewer"]["role"] == "supervisor"
    sheet = _sheets(state)[(r.member_ids[0], r.bid_ids[0])]
    assert (sheet["values"], sheet["comments"], sheet["submitted"]) == ({"T1": "4"}, {"T1": "thin plan"}, False)


def test_a_saved_draft_survives_a_new_session(make_room):
    r = make_room()
    room.save_sheet(r.member_actor(0), r.evaluation_id, r.bid_ids[0], {"T1": "6", "Q1": "fail"}, {"Q1": "expired"})
    room.save_sheet(r.member_actor(0), r.evaluation_id, r.bid_ids[0], {"T2": "2"}, revision=1)
    db.session.commit()
    evaluation_id, person_id, key = r.evaluation_id, r.experts[0].id, (r.member_ids[0], r.bid_ids[0])
    db.session.remove()  # a reconnecting client: new session, nothing cached
    state = room_state(evaluation_id, room_access(person_id, evaluation_id))
    draft = _sheets(state)[key]
    assert (draft["values"], draft["comments"], draft["revision"], draft["submitted"]) == \
        ({"T1": "6", "Q1": "fail", "T2": "2"}, {"Q1": "expired"}, 2, False)


def test_state_lists_bids_members_criteria_and_is_json(make_room):
    r = make_room(experts=5, bidders=3)
    state = _state(r, 0)
    json.dumps(state)
    assert state["status"] == "scoring" and state["viewer"] == {
        "role": "member", "name": r.experts[0].name, "member_id": r.member_ids[0], "person_id": r.experts[0].id,
        "read_only": False}
    bids = {b["bid_opening_id"]: b for b in state["bids"]}
    assert [bids[i]["evaluated"] for i in r.bid_ids + r.failed_bid_ids] == [True, True, False]
    first = bids[r.bid_ids[0]]
    assert first["price"] == r.opening.prices[r.bidder_of(r.bid_ids[0]).org.id]
    assert (first["duration_days"], first["quality"], first["project_manager"]["name"]) == (365, "合格", "张伟")
    assert first["bid_file_url"] and first["record_pdf_url"].endswith("/hall/record/revision.pdf")
    failed = bids[r.failed_bid_ids[0]]
    assert failed["price"] is None and failed["failure"] == {"cause": "bidder", "outcome": "revoked"}
    assert [m["member_id"] for m in state["members"]] == r.member_ids and state["seats"] == 5
    assert sum(1 for c in state["criteria"] if c["kind"] == "score") == 4
    assert state["chair"] == {"chair_member_id": None, "seats": 5, "needed": 3, "votes_cast": 0, "counts": [],
                              "my_vote": None}
    present = room_state(r.evaluation_id, room_access(r.experts[0].id, r.evaluation_id), present=[r.member_ids[1]])
    assert [m["present"] for m in present["members"]] == [False, True, False, False, False]


def test_chair_clarifications_disputes_and_warnings_in_the_state(make_room):
    r = make_room(experts=5)
    ev, bid = r.evaluation_id, r.bid_ids[0]
    room.vote_chair(r.member_actor(0), ev, r.member_ids[1])
    c = room.ask_clarification(r.member_actor(0), ev, bid, "Explain the low price.", minutes=15)
    d = room.raise_dispute(r.member_actor(1), ev, bid, "R3", "above the ceiling?")
    room.vote_dispute(r.member_actor(2), d.id, "pass", reason="below the ceiling")
    db.session.commit()
    r.submit_all(members=[0, 1, 3])
    room.save_sheet(r.member_actor(2), ev, bid, {**FULL_SHEET, "T1": "1"})
    room.submit_sheet(r.member_actor(2), ev, bid)
    db.session.commit()
    state = _state(r, 0)
    assert state["chair"]["my_vote"] == r.member_ids[1] and state["chair"]["counts"] == [
        {"candidate_id": r.member_ids[1], "votes": 1}]
    assert [(x["id"], x["status"], x["question"]) for x in state["clarifications"]] == \
        [(c.id, "open", "Explain the low price.")]
    assert state["disputes"][0]["votes"] == [{"member_id": r.member_ids[2], "vote": "pass",
                                              "reason": "below the ceiling", "at": state["disputes"][0]["votes"][0]["at"]}]
    assert [(w["member_id"], w["criterion"], w["value"]) for w in state["warnings"]] == [(r.member_ids[2], "T1", "1")]
    assert _state(r, 4)["warnings"] == []  # member 4 has not submitted: no values through warnings either
    assert len(_state(r, r.supervisor)["warnings"]) == 1
    clock.travel(timedelta(minutes=16))
    assert _state(r, 0)["clarifications"][0]["status"] == "expired"  # overdue ones expire on read
