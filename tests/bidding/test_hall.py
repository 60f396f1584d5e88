"""The opening hall's Socket.IO namespace: who enters, what they get on joining, live events, presence, acting."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bidding import opening
from bidding.hall_events import NAMESPACE
from bidding.opening_models import OpeningPhase, OpeningSession
from core.clock import clock
from core.db import db
from core.identity.access import actor_for
from tests.bidding.conftest import api_as, frozen  # noqa: F401  (fixtures of the kit)
from tests.bidding.hall_support import (  # noqa: F401  (clean_presence is a fixture)
    act,
    build_hall,
    clean_presence,
    events,
    flush_presence,
    hall_client,
    join,
    outsider,
    token_for,
)
from tests.bidding.sealed_support import kit_fixture  # noqa: F401  (the kit fixture)

pytestmark = pytest.mark.usefixtures("clean_presence")


@pytest.fixture
def hall(kit):
    return build_hall(kit, clock)


def test_a_connection_without_login_or_with_a_bad_token_is_refused(app, hall):
    assert not hall_client(app).is_connected(NAMESPACE)
    assert not hall_client(app, token="ebid_" + "x" * 43).is_connected(NAMESPACE)


def test_an_outsider_connects_but_may_not_join_the_hall(app, kit, hall):
    client = hall_client(app, outsider(kit))
    assert client.is_connected(NAMESPACE)
    answer = join(client, hall.tender_id)
    assert answer["ok"] is False and answer["code"] == "hall_refused"
    assert events(client, "hall.state") == []
    act_answer = act(client, hall.tender_id, "check_in")
    assert act_answer["code"] == "not_joined"


def test_a_bidder_joins_by_cookie_and_gets_the_full_state(app, hall):
    bidder = hall.bidders[0]
    client = hall_client(app, bidder.person)
    answer = join(client, hall.tender_id)
    assert answer == {"ok": True, "role": "bidder", "actions": ["check_in"]}
    [state] = events(client, "hall.state")
    assert state["tender_id"] == hall.tender_id and state["phase"] == "checkin"
    assert state["you"]["name"] == bidder.org.name and state["you"]["read_only"] is False
    assert state["bidders_public"] is True
    assert sorted(row["bidder"] for row in state["board"]) == sorted(b.org.name for b in hall.bidders)
    assert {row["status"] for row in state["board"]} == {"pending"}
    assert all(row["form"] is None for row in state["board"])  # nothing of any bid's content yet
    assert state["server_time"] == clock.now().isoformat()
    assert [p["role"] for p in state["participants"]] == ["host", "supervisor"]
    assert state["presence"] == [] and state["presence_seq"] == 0  # the presence as last broadcast: none yet
    assert flush_presence(app) == [hall.tender_id]  # the join is in the room's next broadcast
    [delta] = events(client, "hall.presence")
    assert delta == {"tender_id": hall.tender_id, "seq": 1, "full": True,
                     "changes": [{"role": "bidder", "name": bidder.org.name, "connections": 1}]}
    other = hall_client(app, hall.bidders[1].person)
    join(other, hall.tender_id)
    [state] = events(other, "hall.state")
    assert state["presence"] == delta["changes"] and state["presence_seq"] == 1


def test_a_bidder_joins_by_api_token(app, hall):
    client = hall_client(app, token=token_for(hall.bidders[1].person))
    assert join(client, hall.tender_id)["role"] == "bidder"
    assert events(client, "hall.state")[0]["you"]["organisation_id"] == hall.bidders[1].org.id


@pytest.mark.parametrize("who, role, read_only", [("host", "host", False), ("supervisor", "supervisor", False),
                                                   ("staff", "staff", True), ("other_supervisor", "supervisor", True),
                                                   ("custodian", "custodian", True)])
def test_roles_in_the_hall(app, kit, hall, who, role, read_only):
    people = {"host": hall.host, "supervisor": hall.supervisor,
              "staff": kit.create_person(roles=("tenderer",), organisation=hall.tender.tenderer),
              "other_supervisor": kit.create_person(roles=("supervisor",)),
              "custodian": kit.custodians[hall.tender_id][0][0]}
    db.session.commit()
    client = hall_client(app, people[who])
    assert join(client, hall.tender_id)["role"] == role
    assert events(client, "hall.state")[0]["you"]["read_only"] is read_only


def test_live_events_reach_everyone_in_the_room_and_actions_follow_the_role(app, hall):
    host, supervisor = hall_client(app, hall.host), hall_client(app, hall.supervisor)
    bidders = [hall_client(app, b.person) for b in hall.bidders[:2]]
    for client in (host, supervisor, *bidders):
        assert join(client, hall.tender_id)["ok"]
        client.get_received(NAMESPACE)

    answer = act(supervisor, hall.tender_id, "start_decryption")
    assert answer["ok"] is False and answer["code"] == "supervisor_read_only"
    assert act(bidders[0], hall.tender_id, "start_decryption")["code"] == "read_only"
    assert db.session.get(OpeningSession, hall.tender_id).phase == OpeningPhase.CHECKIN

    assert act(bidders[0], hall.tender_id, "check_in") == {"ok": True}
    for client in (host, supervisor, *bidders):
        [checkin] = events(client, "hall.checkin")
        assert checkin["organisation"] == hall.bidders[0].org.name

    assert act(host, hall.tender_id, "start_decryption") == {"ok": True}
    db.session.expire_all()
    assert db.session.get(OpeningSession, hall.tender_id).phase == OpeningPhase.DECRYPTING
    for client in (host, supervisor, *bidders):
        received = client.get_received(NAMESPACE)
        phases = [r["args"][0] for r in received if r["name"] == "hall.phase"]
        assert phases and phases[-1]["phase"] == "decrypting"
        assert any(r["name"] == "hall.announcement" for r in received)

    again = act(host, hall.tender_id, "start_decryption")
    assert again["ok"] is False and again["code"] == "already_started" and "already" in again["message"]


def test_a_reconnecting_client_gets_the_current_state_again(app, hall):
    client = hall_client(app, hall.bidders[0].person)
    join(client, hall.tender_id)
    assert events(client, "hall.state")[0]["phase"] == "checkin"
    client.disconnect(NAMESPACE)
    opening.start_decryption(actor_for(hall.host, "tenderer", hall.tender.tenderer_id), hall.tender_id)
    db.session.commit()
    client.connect(NAMESPACE)
    join(client, hall.tender_id)
    [state] = events(client, "hall.state")
    assert state["phase"] == "decrypting"
    assert state["countdown"]["kind"] == "decryption"
    assert state["countdown"]["end"] == (clock.now() + timedelta(minutes=30)).isoformat()
    assert [a["kind"] for a in state["announcements"]] == ["start"]
