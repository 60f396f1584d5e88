"""Draw requests, verifiable rounds, invitations, declines, top-ups (补抽), export and verification."""

from __future__ import annotations

import base64
import hashlib
import json
import threading

import pytest
from sqlalchemy import select

from bidding.receipts import key_id_hex, log_key
from bidding.sealed_models import LogEntry
from core.audit import AuditEvent
from core.db import db
from core.errors import Forbidden
from core.identity.access import actor_for
from core.identity.models import OrganisationKind
from core.notifications import Notification
from crypto.receipt import log_entry, parse_log_entry
from evaluation import draw_rules as R
from evaluation import drawing, recusal
from evaluation.draw_errors import DrawRefused, NotYourInvitation
from evaluation.pool_models import DrawRequest, DrawRound, DrawStatus, MemberStatus
from tests.evaluation.draw_support import (  # noqa: F401  (fixtures)
    SPECIALTY,
    draw_tender_fixture,
    expert_actor,
    make_expert_fixture,
    make_request_fixture,
    members_of,
    pool_fixture,
    staff_actor,
)
from tests.factories import PASSWORD


def log_bodies(tender) -> list[tuple[int, dict]]:
    rows = db.session.scalars(select(LogEntry).where(LogEntry.tender_id == tender.id).order_by(LogEntry.index))
    return [(e.index, parse_log_entry(bytes(e.entry))) for e in rows]


def actions() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))


def drawn(tender):
    drawing.draw(staff_actor(tender), tender.id)
    db.session.commit()
    return db.session.scalar(select(DrawRound).join(DrawRequest).where(DrawRequest.tender_id == tender.id))


def test_request_rules_are_enforced_and_refusals_change_nothing(draw_tender):
    tender = draw_tender()
    with pytest.raises(DrawRefused) as info:
        drawing.request_draw(staff_actor(tender), tender.id, specialties=[(SPECIALTY, 4)], committee_size=4)
    assert set(info.value.fields) == {"committee_size"}
    with pytest.raises(DrawRefused) as info:
        drawing.request_draw(staff_actor(tender), tender.id, specialties=[(SPECIALTY, 3)], committee_size=5,
                             tenderer_representatives=2)
    assert "tenderer_representatives" in info.value.fields
    db.session.rollback()
    assert drawing.request_of(tender.id) is None


def test_only_the_tenders_managers_request(draw_tender, create_person, create_org):
    tender = draw_tender()
    outsider_org = create_org(kind=OrganisationKind.TENDERER)
    outsider = create_person(roles=("tenderer",), organisation=outsider_org)
    with pytest.raises(Forbidden):
        drawing.request_draw(actor_for(outsider, "tenderer", outsider_org.id), tender.id,
                             specialties=[(SPECIALTY, 5)], committee_size=5)


def test_draw_commits_before_it_reveals_and_the_seed_matches(draw_tender, pool, make_request):
    pool(9)
    tender = draw_tender()
    make_request(tender)
    rnd = drawn(tender)
    entries = log_bodies(tender)
    commit = [(i, b) for i, b in entries if b["kind"] == "draw.commit"]
    reveal = [(i, b) for i, b in entries if b["kind"] == "draw.reveal"]
    assert len(commit) == 1 and len(reveal) == 1 and commit[0][0] < reveal[0][0]
    assert commit[0][1]["commitment"] == hashlib.sha256(bytes.fromhex(reveal[0][1]["seed"])).hexdigest()
    assert commit[0][1]["candidates_sha256"] == rnd.candidates_sha256 == R.sha256_hex(R.canonical(rnd.candidates))
    assert reveal[0][1]["seed"] == rnd.seed and rnd.beacon and reveal[0][1]["beacon"] == rnd.beacon
    assert (rnd.commit_log_index, rnd.reveal_log_index) == (commit[0][0], reveal[0][0])
    # the beacon is the root of a tree head signed after the commit entry
    assert rnd.beacon != "0" * 64
    a = actions()
    assert a.index("draw.commit") < a.index("draw.reveal")


def test_same_seed_and_frozen_list_give_the_same_committee(draw_tender, pool, make_request):
    pool(9)
    tender = draw_tender()
    make_request(tender)
    rnd = drawn(tender)
    again = R.draw_committee(bytes.fromhex(rnd.seed), rnd.beacon, tender.code, rnd.number, rnd.candidates, rnd.wanted)
    assert again == rnd.result
    seats = [m.expert.code for m in members_of(tender) if not m.is_alternate]
    assert seats == rnd.result[SPECIALTY]["members"]
    assert [m.expert.code for m in members_of(tender) if m.is_alternate] == rnd.result[SPECIALTY]["alternates"]


def test_log_entries_carry_no_names(draw_tender, pool, make_request):
    experts = pool(9)
    tender = draw_tender()
    make_request(tender)
    drawn(tender)
    member = members_of(tender, MemberStatus.INVITED)[0]
    recusal.accept(expert_actor(member.expert), member.id)
    db.session.commit()
    raw = b"".join(bytes(e.entry) for e in db.session.scalars(select(LogEntry).where(LogEntry.tender_id == tender.id)))
    for e in experts:
        assert e.name.encode() not in raw and e.person.email.encode() not in raw


def test_excluded_experts_keep_their_reasons(draw_tender, pool, make_expert, make_request):
    tender = draw_tender()
    pool(7)
    own = make_expert(employer_uscc=tender.tenderer.uscc)
    bad = make_expert(is_penalised=True, is_available=False)
    make_expert(specialties=["Z999"])
    db.session.commit()
    make_request(tender)
    rnd = drawn(tender)
    excluded = {e["code"]: e["reasons"] for e in rnd.excluded}
    assert excluded == {own.code: ["employer_is_tenderer"], bad.code: ["penalised", "unavailable"]}
    assert rnd.candidates["not_matching"] == 1
    codes = [m.expert.code for m in members_of(tender)]
    assert own.code not in codes and bad.code not in codes


def test_members_are_invited_and_notified_alternates_wait(draw_tender, pool, make_request):
    pool(9)
    tender = draw_tender()
    make_request(tender)
    drawn(tender)
    invited = members_of(tender, MemberStatus.INVITED)
    assert len(invited) == 5 and all(not m.is_alternate for m in invited)
    assert len(members_of(tender, MemberStatus.WAITING)) == 2
    notes = db.session.scalars(select(Notification).where(Notification.kind == "expert.invitation")).all()
    assert sorted(n.person_id for n in notes) == sorted(m.expert.person_id for m in invited)
    assert tender.code in notes[0].subject
    assert drawing.request_of(tender.id).status == DrawStatus.DRAWN


def test_decline_calls_the_next_alternate_of_the_same_specialty_first(draw_tender, pool, make_request):
    pool(8, specialties=["A010101", "B020202"])
    tender = draw_tender()
    make_request(tender, specialties=[("A010101", 3), ("B020202", 2)], alternates=1)
    drawn(tender)
    waiting = members_of(tender, MemberStatus.WAITING)
    assert sorted(m.specialty for m in waiting) == ["A010101", "B020202"]
    b_member = next(m for m in members_of(tender, MemberStatus.INVITED) if m.specialty == "B020202")
    with pytest.raises(NotYourInvitation):
        recusal.decline(expert_actor(waiting[0].expert), b_member.id, "busy")
    db.session.rollback()
    recusal.decline(expert_actor(b_member.expert), b_member.id, "Abroad that week")
    db.session.commit()
    b_alt = next(m for m in waiting if m.specialty == "B020202")
    assert db.session.get(type(b_alt), b_alt.id).status == MemberStatus.INVITED
    assert b_member.status == MemberStatus.DECLINED and b_member.decline_reason == "Abroad that week"
    # the second B decline takes the remaining (A) alternate; the third leaves the request SHORT
    b_second = next(m for m in members_of(tender, MemberStatus.INVITED) if m.specialty == "B020202"
                    and m.id != b_alt.id)
    recusal.decline(expert_actor(b_second.expert), b_second.id, "Ill")
    db.session.commit()
    a_alt = next(m for m in waiting if m.specialty == "A010101")
    assert a_alt.status == MemberStatus.INVITED
    recusal.decline(expert_actor(b_alt.expert), b_alt.id, "Conflict of dates")
    db.session.commit()
    request = drawing.request_of(tender.id)
    assert request.status == DrawStatus.SHORT
    assert db.session.scalars(select(Notification).where(Notification.kind == "draw.short")).first() is not None
    committee_events = [b for _i, b in log_bodies(tender) if b["kind"] == "committee"]
    assert [b["event"] for b in committee_events].count("declined") == 3
    assert actions().count("draw.declined") == 3 and "draw.short" in actions()


def test_top_up_draws_over_the_experts_not_drawn_yet(draw_tender, pool, make_request):
    pool(6)
    tender = draw_tender()
    make_request(tender, alternates=1)
    drawn(tender)
    with pytest.raises(DrawRefused, match="top-up"):
        drawing.top_up(staff_actor(tender), tender.id)
    db.session.rollback()
    for _ in range(2):
        member = members_of(tender, MemberStatus.INVITED)[0]
        recusal.decline(expert_actor(member.expert), member.id, "No")
        db.session.commit()
    assert drawing.request_of(tender.id).status == DrawStatus.SHORT
    with pytest.raises(DrawRefused) as info:
        drawing.top_up(staff_actor(tender), tender.id)
    assert "Only 0 eligible experts hold specialty A010101, and 1 are needed" in info.value.to_dict()["message"]
    db.session.rollback()
    pool(3)
    db.session.commit()
    rnd = drawing.top_up(staff_actor(tender), tender.id)
    db.session.commit()
    first_codes = {m.expert.code for m in members_of(tender) if m.round.number == 1}
    assert rnd.number == 2 and rnd.purpose == "top_up" and rnd.wanted == {SPECIALTY: {"count": 1, "alternates": 1}}
    assert not set(rnd.candidates["specialties"][SPECIALTY]) & first_codes
    assert len(members_of(tender, MemberStatus.INVITED)) == 5
    assert drawing.request_of(tender.id).status == DrawStatus.DRAWN
    commits = [b for _i, b in log_bodies(tender) if b["kind"] == "draw.commit"]
    assert [(b["round"], b["purpose"]) for b in commits] == [(1, "initial"), (2, "top_up")]
    assert all(c.ok for c in drawing.verify_tender(tender.id))


def test_complete_when_every_seat_accepts_alternates_released(draw_tender, pool, make_request):
    pool(9)
    tender = draw_tender()
    make_request(tender)
    drawn(tender)
    for m in members_of(tender, MemberStatus.INVITED):
        recusal.accept(expert_actor(m.expert), m.id)
        db.session.commit()
    assert drawing.request_of(tender.id).status == DrawStatus.COMPLETE
    assert len(members_of(tender, MemberStatus.RELEASED)) == 2
    assert "draw.complete" in actions()


def test_local_cap_is_honoured(draw_tender, pool, make_request):
    pool(6, region="370202")
    pool(6, region="110101")
    tender = draw_tender()
    make_request(tender, host_region="370200", local_cap=1, alternates=2)
    rnd = drawn(tender)
    local = [m for m in members_of(tender) if R.is_local(m.expert.region, "370200")]
    assert len(local) <= 1 and len(rnd.candidates["local"]) == 6


def test_not_enough_experts_is_refused_before_anything_is_logged(draw_tender, pool, make_request):
    pool(4)
    tender = draw_tender()
    make_request(tender)
    with pytest.raises(DrawRefused) as info:
        drawing.draw(staff_actor(tender), tender.id)
    assert info.value.to_dict()["message"].startswith("Only 4 eligible experts hold specialty A010101")
    db.session.rollback()
    assert not [b for _i, b in log_bodies(tender) if b["kind"].startswith("draw")]
    assert drawing.request_of(tender.id).rounds == []


def test_draw_once_and_request_frozen_after(draw_tender, pool, make_request):
    pool(9)
    tender = draw_tender()
    make_request(tender)
    drawn(tender)
    with pytest.raises(DrawRefused, match="already drawn"):
        drawing.draw(staff_actor(tender), tender.id)
    db.session.rollback()
    with pytest.raises(DrawRefused, match="already drawn"):
        drawing.request_draw(staff_actor(tender), tender.id, specialties=[(SPECIALTY, 5)], committee_size=5)


def test_export_verifies_offline_and_every_flipped_byte_is_reported(draw_tender, pool, make_request):
    pool(9)
    tender = draw_tender()
    make_request(tender)
    drawn(tender)
    assert all(c.ok for c in drawing.verify_tender(tender.id))
    data = drawing.export_document(tender)
    code, checks = drawing.verify_document(data)
    assert code == tender.code and [c.ok for c in checks] == [True]
    doc = json.loads(data)
    assert "name" not in json.dumps(doc["rounds"])
    for position in range(0, len(data), max(1, len(data) // 400)):
        flipped = bytearray(data)
        flipped[position] ^= 0x01
        _code, checks = drawing.verify_document(bytes(flipped))
        assert not all(c.ok for c in checks), position


def test_a_rewritten_export_with_a_fresh_digest_is_still_caught(draw_tender, pool, make_request):
    pool(9)
    tender = draw_tender()
    make_request(tender)
    drawn(tender)
    body = json.loads(drawing.export_document(tender))
    body.pop("sha256")
    rnd = body["rounds"][0]
    members = rnd["result"][SPECIALTY]["members"]
    rnd["result"][SPECIALTY]["members"] = [rnd["result"][SPECIALTY]["alternates"][0], *members[1:]]
    forged = R.canonical({**body, "sha256": R.sha256_hex(R.canonical(body))})
    _code, [check] = drawing.verify_document(forged)
    text = " ".join(str(p) for p in check.problems)
    assert "reveal entry differs in 'result_sha256'" in text and "another committee" in text


def test_verify_tender_reads_the_log_not_the_row(draw_tender, pool, make_request):
    pool(9)
    tender = draw_tender()
    make_request(tender)
    rnd = drawn(tender)
    rnd.seed = hashlib.sha256(b"another seed").hexdigest()
    db.session.commit()
    [check] = drawing.verify_tender(tender.id)
    assert not check.ok and any("committed value" in str(p) for p in check.problems)


def test_a_forged_log_entry_is_not_in_the_signed_log(draw_tender, pool, make_request):
    pool(9)
    tender = draw_tender()
    make_request(tender)
    drawn(tender)
    body = json.loads(drawing.export_document(tender))
    body.pop("sha256")
    rnd = body["rounds"][0]
    part = rnd["result"][SPECIALTY]
    part["members"], part["alternates"] = [part["alternates"][0], *part["members"][1:]], part["alternates"]
    for item in body["log"]:
        entry = parse_log_entry(base64.b64decode(item["entry"]))
        if entry["kind"] == "draw.reveal":
            entry["result_sha256"] = R.sha256_hex(R.canonical(rnd["result"]))
            fields = {k: v for k, v in entry.items() if k not in ("type", "kind")}
            item["entry"] = base64.b64encode(log_entry("draw.reveal", **fields)).decode()
    forged = R.canonical({**body, "sha256": R.sha256_hex(R.canonical(body))})
    _code, checks = drawing.verify_document(forged)
    text = " ".join(str(p) for c in checks for p in c.problems)
    assert "not proven to be in the tender's signed log" in text
    assert drawing.log_key_id(body) == key_id_hex(log_key().public_key())


@pytest.mark.postgres
def test_two_managers_drawing_at_once_make_one_round(app, draw_tender, pool, make_request, create_person):
    pool(9)
    tender = draw_tender()
    make_request(tender)
    second = create_person(roles=("tenderer",), organisation=tender.tenderer)
    db.session.commit()
    clients = []
    for person in (tender.created_by, second):
        client = app.test_client()
        assert client.post("/login", data={"email": person.email, "password": PASSWORD}).status_code == 302
        clients.append(client)
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def run(client):
        barrier.wait(timeout=20)
        codes.append(client.post(f"/tenders/{tender.id}/draw/run").status_code)

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(codes) == [302, 422]
    db.session.expire_all()
    assert len(drawing.request_of(tender.id).rounds) == 1
    assert [b["kind"] for _i, b in log_bodies(tender)].count("draw.commit") == 1
    assert len(members_of(tender)) == 7 and all(c.ok for c in drawing.verify_tender(tender.id))
