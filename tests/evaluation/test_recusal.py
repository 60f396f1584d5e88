"""Sign-in (签到) with the recusal declaration (回避声明), automatic and declared recusal, replacement."""

from __future__ import annotations

import base64
import hashlib

import pytest
from sqlalchemy import select

from bidding.sealed_models import LogEntry
from core.audit import AuditEvent
from core.db import db
from crypto import keys
from crypto.receipt import parse_log_entry
from evaluation import recusal
from evaluation.draw_errors import SignInRefused
from evaluation.pool_models import DrawStatus, MemberStatus
from evaluation.room_models import Evaluation, EvaluationStatus
from tests.evaluation.draw_support import (  # noqa: F401  (fixtures)
    committee_fixture,
    draw_tender_fixture,
    expert_actor,
    make_expert_fixture,
    make_request_fixture,
    members_of,
    open_bids_fixture,
    pool_fixture,
    start_room_fixture,
)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sign_in_typed(member):
    text = recusal.declaration_text(member)
    result = recusal.sign_in(expert_actor(member.expert), member.id, text_sha256=digest(text),
                             typed_name=member.expert.name)
    db.session.commit()
    return result


def committee_log(tender) -> list[dict]:
    rows = db.session.scalars(select(LogEntry).where(LogEntry.tender_id == tender.id).order_by(LogEntry.index))
    return [b for b in (parse_log_entry(bytes(e.entry)) for e in rows) if b["kind"] == "committee"]


def test_sign_in_waits_for_the_evaluation(committee):
    c = committee()
    member = c.members[0]
    with pytest.raises(SignInRefused) as info:
        sign_in_typed(member)
    assert info.value.code == "not_started"


def test_typed_sign_in_stores_the_declaration_with_the_bidders(committee, start_room):
    c = committee()
    start_room(c.tender)
    member = c.members[0]
    sign_in_typed(member)
    assert member.status == MemberStatus.SIGNED_IN and member.declaration_method == "typed"
    for org in c.bidders:
        assert org.uscc in member.declaration and org.name in member.declaration
    assert "第十二条" in member.declaration and member.declaration_sha256 == digest(member.declaration)
    assert member.declaration_signature is None and member.signed_in_at is not None
    [event] = [b for b in committee_log(c.tender) if b["event"] == "signed-in"]
    assert event["sha256"] == member.declaration_sha256 and event["member"] == member.expert.code
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "draw.signed_in")) is not None


def test_typed_name_and_current_text_are_required(committee, start_room):
    c = committee()
    start_room(c.tender)
    member = c.members[0]
    text = recusal.declaration_text(member)
    with pytest.raises(SignInRefused) as info:
        recusal.sign_in(expert_actor(member.expert), member.id, text_sha256=digest(text), typed_name="someone")
    assert info.value.code == "name_mismatch"
    db.session.rollback()
    with pytest.raises(SignInRefused) as info:
        recusal.sign_in(expert_actor(member.expert), member.id, text_sha256=digest(text + "x"),
                        typed_name=member.expert.name)
    assert info.value.code == "declaration_changed"


def test_certificate_holders_sign_with_their_key(committee, start_room, certify):
    c = committee()
    start_room(c.tender)
    member = c.members[0]
    key, cert = certify(person=member.expert.person)
    db.session.commit()
    text = recusal.declaration_text(member)
    actor = expert_actor(member.expert)
    with pytest.raises(SignInRefused) as info:
        recusal.sign_in(actor, member.id, text_sha256=digest(text), typed_name=member.expert.name)
    assert info.value.code == "signature_required"
    db.session.rollback()
    other_key = keys.generate_private_key()
    forged = base64.b64encode(keys.sign(other_key, text.encode())).decode()
    with pytest.raises(SignInRefused) as info:
        recusal.sign_in(actor, member.id, text_sha256=digest(text), signature=forged)
    assert info.value.code == "bad_signature"
    db.session.rollback()
    signature = base64.b64encode(keys.sign(key, text.encode("utf-8"))).decode()
    recusal.sign_in(actor, member.id, text_sha256=digest(text), signature=signature)
    db.session.commit()
    assert member.status == MemberStatus.SIGNED_IN and member.declaration_method == "certificate"
    assert member.declaration_certificate_id == cert.id and member.declaration_signature == signature
    assert keys.verify(key.public_key(), base64.b64decode(member.declaration_signature),
                       member.declaration.encode("utf-8"))


def test_employer_that_is_a_bidder_is_recused_and_replaced(committee, start_room):
    c = committee()
    start_room(c.tender)
    member = c.members[0]
    member.expert.employer_uscc = c.bidders[1].uscc
    db.session.commit()
    released = [m for m in c.alternates if m.status == MemberStatus.RELEASED]
    assert released
    result = sign_in_typed(member)
    assert result.status == MemberStatus.RECUSED and "works for a bidder" in member.recusal_reason
    assert member.declaration is None
    called = members_of(c.tender, MemberStatus.INVITED)
    assert [m.id for m in called] == [released[0].id]
    assert c.request.status == DrawStatus.DRAWN
    events = [b["event"] for b in committee_log(c.tender)]
    assert events[-2:] == ["recused", "invited"]
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "draw.recused"))
    assert audit.summary["reasons"] == ["employer_is_bidder"] and audit.summary["automatic"] is True


def test_declared_avoidance_unit_that_is_a_bidder_is_recused(committee, start_room):
    c = committee()
    start_room(c.tender)
    member = c.members[1]
    member.expert.avoidance_usccs = [c.bidders[0].uscc]
    db.session.commit()
    assert sign_in_typed(member).status == MemberStatus.RECUSED
    assert member.recusal_reason == "declared the tenderer, the agency or a bidder as a unit to avoid"


def test_replacement_in_conflict_is_skipped(committee, start_room):
    c = committee()
    start_room(c.tender)
    first, second = [m for m in c.alternates][:2]
    first.expert.employer_uscc = c.bidders[2].uscc
    member = c.members[0]
    member.expert.employer_uscc = c.bidders[0].uscc
    db.session.commit()
    sign_in_typed(member)
    assert first.status == MemberStatus.RECUSED and second.status == MemberStatus.INVITED


def test_an_expert_declares_a_conflict(committee, start_room):
    c = committee()
    start_room(c.tender)
    member = c.members[2]
    recusal.declare_conflict(expert_actor(member.expert), member.id, "My brother works for a bidder")
    db.session.commit()
    assert member.status == MemberStatus.RECUSED and member.recusal_reason == "My brother works for a bidder"
    replacement = members_of(c.tender, MemberStatus.INVITED)[0]
    recusal.accept(expert_actor(replacement.expert), replacement.id)
    db.session.commit()
    assert replacement.status == MemberStatus.ACCEPTED and c.request.status == DrawStatus.COMPLETE
    assert sign_in_typed(replacement).status == MemberStatus.SIGNED_IN


def test_every_seat_signed_in_moves_the_room_to_scoring(committee, start_room):
    c = committee()
    evaluation = start_room(c.tender)
    members = c.members
    for m in members[:-1]:
        sign_in_typed(m)
    assert db.session.get(Evaluation, evaluation.id).status == EvaluationStatus.SIGNING_IN
    sign_in_typed(members[-1])
    assert db.session.get(Evaluation, evaluation.id).status == EvaluationStatus.SCORING


def test_no_alternate_left_makes_the_request_short(committee, start_room):
    c = committee(experts=5, alternates=0)
    start_room(c.tender)
    member = c.members[0]
    recusal.declare_conflict(expert_actor(member.expert), member.id, "conflict")
    db.session.commit()
    assert c.request.status == DrawStatus.SHORT
