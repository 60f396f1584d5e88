"""The expert pool: CSV import (all or nothing, every bad line named), logins, status, history."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.actor import Actor
from core.audit import AuditEvent
from core.db import db
from core.errors import Forbidden
from core.identity import person_by_email
from core.identity.access import actor_for
from core.identity.models import Role
from evaluation import drawing, experts, recusal
from evaluation.draw_errors import ImportRejected
from evaluation.pool_models import Expert, MemberStatus
from tests.evaluation.draw_support import (  # noqa: F401  (fixtures)
    draw_tender_fixture,
    expert_actor,
    make_expert_fixture,
    make_request_fixture,
    members_of,
    pool_fixture,
    staff_actor,
)
from tests.factories import make_uscc

ADMIN = Actor.system(source="test")
HEADER = "code,name,email,specialties,region,employer_uscc,employer_name,title,avoidance_usccs,available\n"
U1, U2, U3 = make_uscc(800001), make_uscc(800002), make_uscc(800003)


def csv_text(*lines: str) -> str:
    return HEADER + "".join(line + "\n" for line in lines)


def count_experts() -> int:
    return db.session.scalar(select(func.count()).select_from(Expert))


def test_import_creates_experts_and_their_logins(app, create_person):
    existing = create_person(email="old@example.test", name="王五")
    report = experts.import_experts(ADMIN, csv_text(
        f"E001,张三,zhang@example.test,A010101;B020202,370202,{U1},青岛设计院,高级工程师,{U2};{U3},1",
        f"E002,王五,OLD@example.test,A010101,110101,{U2},北京咨询,,,0",
        "E003,李四,,C030303,440300,,,,,",
    ).encode("utf-8"))
    db.session.commit()
    assert report.created == ["E001", "E002", "E003"] and report.persons_created == ["zhang@example.test"]
    e1 = experts.expert_by_code("E001")
    assert e1.specialties == ["A010101", "B020202"] and e1.avoidance_usccs == [U2, U3]
    assert e1.employer_uscc == U1 and e1.is_available and e1.title == "高级工程师"
    person = person_by_email("zhang@example.test")
    assert e1.person_id == person.id and person.has_role(Role.EXPERT)
    assert actor_for(person, "expert").role == "expert"  # can act as an expert
    e2 = experts.expert_by_code("E002")
    assert e2.person_id == existing.id and not e2.is_available and existing.has_role(Role.EXPERT)
    assert experts.expert_by_code("E003").person_id is None


def test_reimport_updates_by_code(app):
    experts.import_experts(ADMIN, csv_text(f"E001,张三,zhang@example.test,A010101,370202,{U1},A,,,1"))
    db.session.commit()
    report = experts.import_experts(ADMIN, csv_text(f"E001,张三丰,zhang@example.test,B020202,370203,{U2},B,,,no"))
    db.session.commit()
    e1 = experts.expert_by_code("E001")
    assert report.updated == ["E001"] and report.created == []
    assert (e1.name, e1.specialties, e1.region, e1.employer_uscc, e1.is_available) == \
        ("张三丰", ["B020202"], "370203", U2, False)
    assert count_experts() == 1


def test_every_bad_line_is_reported_and_nothing_imported(app):
    bad_check = U1[:-1] + ("0" if U1[-1] != "0" else "1")
    with pytest.raises(ImportRejected) as info:
        experts.import_experts(ADMIN, csv_text(
            f"E001,张三,zhang@example.test,A010101,370202,{U1},A,,,1",
            f"E002,李四,not-an-email,A010101,3702,{bad_check},B,,,maybe",
            "E001,王五,,A010101,370202,,,,,",
            "E 4,,,,110101,,,,,",
        ))
    db.session.rollback()
    lines = {line for line, _text in info.value.problems}
    assert lines == {3, 4, 5}
    text = " ".join(t for _line, t in info.value.problems)
    for fragment in ("not an e-mail address", "6-digit administrative division code", "check character",
                     "available must be 1 or 0", "code E001 is already on line 2", "name must have",
                     "specialties is empty", "code must be"):
        assert fragment in text, fragment
    assert "line 3" in info.value.to_dict()["fields"]
    assert count_experts() == 0


def test_header_and_encoding_are_checked(app):
    with pytest.raises(ImportRejected) as info:
        experts.import_experts(ADMIN, "code,name\nE1,x\n")
    assert info.value.problems[0][0] == 1 and "lacks the column(s) email" in info.value.problems[0][1]
    with pytest.raises(ImportRejected) as info:
        experts.import_experts(ADMIN, HEADER.encode() + "E1,张三,,A1,110101,,,,,".encode("gbk") + b"\n")
    assert "not UTF-8" in info.value.problems[0][1]


def test_an_email_of_another_expert_is_refused(app, make_expert):
    other = make_expert(code="E900")
    db.session.commit()
    with pytest.raises(ImportRejected) as info:
        experts.import_experts(ADMIN, csv_text(f"E001,张三,{other.person.email},A010101,370202,,,,,"))
    assert "belongs to expert E900" in info.value.problems[0][1]


def test_only_administrators_import(app, create_person):
    person = create_person(roles=("expert",))
    with pytest.raises(Forbidden):
        experts.import_experts(actor_for(person, "expert"), csv_text("E001,张三,,A010101,370202,,,,,"))


def test_import_and_status_are_audited(app, make_expert):
    experts.import_experts(ADMIN, csv_text("E001,张三,,A010101,370202,,,,,"))
    expert = experts.expert_by_code("E001")
    experts.set_status(ADMIN, expert, is_available=False, reason="abroad", is_penalised=True)
    db.session.commit()
    assert not expert.is_available and expert.unavailable_reason == "abroad" and expert.is_penalised
    actions = list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))
    assert actions[-2:] == ["experts.imported", "expert.status"]


def test_search(app, make_expert):
    make_expert(code="E100", name="张三", specialties=["A010101"], employer_name="青岛设计院")
    make_expert(code="E101", name="李四", specialties=["B020202"])
    db.session.commit()
    assert [e.code for e in experts.search("张")] == ["E100"]
    assert [e.code for e in experts.search("设计院")] == ["E100"]
    assert [e.code for e in experts.search(specialty="b020202")] == ["E101"]
    assert [e.code for e in experts.search()] == ["E100", "E101"]


def test_history_counts_draws_per_tenderer(app, pool, draw_tender, make_request):
    people = pool(7)
    t1, t2 = draw_tender(), draw_tender()
    for tender in (t1, t2):
        make_request(tender)
        drawing.draw(staff_actor(tender), tender.id)
        db.session.commit()
    invited = {m.expert_id for m in members_of(t1, MemberStatus.INVITED)}
    both = invited & {m.expert_id for m in members_of(t2, MemberStatus.INVITED)}
    assert both  # 5 of 7 drawn twice: they overlap
    expert_id = next(iter(both))
    rows = experts.history(expert_id)
    assert sorted(r["tenderer_id"] for r in rows) == sorted([t1.tenderer_id, t2.tenderer_id])
    assert all(r["count"] == 1 for r in rows)
    counts = experts.draws_for_tenderer(t1.tenderer_id)
    assert set(counts) == invited and set(counts.values()) == {1}
    # an accepted invitation still counts, an alternate never invited does not
    member = members_of(t1, MemberStatus.INVITED)[0]
    recusal.accept(expert_actor(member.expert), member.id)
    db.session.commit()
    assert len(experts.draws_for_tenderer(t1.tenderer_id)) == 5
    assert len(people) == 7
