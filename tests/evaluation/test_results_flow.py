"""The evaluation's result end to end: completion freezes the result and prepares the report, every member
signs, the candidates are published, objections wait for an answer, the award releases the others."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from bidding.models import TenderStatus
from bidding.ocds import build_release_package
from bidding.ocds_validation import validate_package
from core.audit import AuditEvent
from core.clock import clock
from core.db import db
from core.errors import DomainError
from core.notifications import Notification
from evaluation import award as awards
from evaluation import outcome, results, room
from evaluation import report as reports
from evaluation.result_models import Award, EvaluationResult, ReportStatus
from tests.evaluation.results_support import complete, sheet, sign_all, sign_as
from tests.evaluation.room_support import *  # noqa: F403  (make_room and the fixtures it needs)


def _scores(r, t1_by_bid):
    return [{bid: sheet(t1) for bid, t1 in t1_by_bid.items()} for _ in r.members]


def test_completion_freezes_the_result_and_prepares_the_report(make_room):
    r = make_room(experts=5, bidders=4)  # 3 decrypted, the last failed
    b0, b1, b2 = r.bid_ids
    complete(r, _scores(r, {b0: "12", b1: "8", b2: "10"}))
    stored = db.session.scalar(select(EvaluationResult).where(EvaluationResult.tender_id == r.tender_id))
    assert stored is not None and stored.method == "comprehensive"
    lot = stored.lots[0]
    assert lot["valid_count"] == 3 and len(lot["not_opened"]) == 1
    rows = {b["bid_opening_id"]: b for b in lot["bids"]}
    # subjective = T1 + 5 + 5 + 5 (every member equal, so trimming changes nothing)
    assert rows[b0]["subjective"] == "27.00" and rows[b1]["subjective"] == "23.00"
    totals = {b: Decimal(rows[b]["total"]) for b in rows}
    ranked = sorted(totals, key=lambda b: -totals[b])
    assert [rows[b]["rank"] for b in ranked] == [1, 2, 3]
    assert [c["bid_opening_id"] for c in lot["candidates"]] == ranked
    report = reports.require_report(r.tender_id)
    assert report.status == ReportStatus.SIGNING and len(report.fields) == 5
    verdict = reports.verdict(report)
    assert verdict.status == "incomplete"
    assert {s.state for s in verdict.signatures} == {"missing"}
    actions = set(db.session.scalars(select(AuditEvent.action)))
    assert {"evaluation.result", "evaluation.report_prepared", "evaluation.completed"} <= actions


def test_every_member_signs_then_the_report_is_final_and_sent(make_room, certify):
    r = make_room(experts=5, bidders=4)
    complete(r)
    sign_as(r, 0, certify)
    report = reports.require_report(r.tender_id)
    assert report.status == ReportStatus.SIGNING
    verdict = reports.verdict(report)
    assert verdict.status == "incomplete"
    missing = [s.member for s in verdict.signatures if s.state == "missing"]
    assert len(missing) == 4
    for i in range(1, 5):
        sign_as(r, i, certify)
    report = reports.require_report(r.tender_id)
    assert report.status == ReportStatus.SIGNED
    assert reports.verdict(report).status == "final"
    kinds = set(db.session.scalars(select(Notification.kind)))
    assert "evaluation_report" in kinds


def test_a_member_cannot_sign_twice_or_for_another(make_room, certify):
    r = make_room(experts=5, bidders=4)
    complete(r)
    keys: dict = {}
    sign_as(r, 0, certify, keys=keys)
    with pytest.raises(DomainError) as exc:
        sign_as(r, 0, certify, keys=keys)
    assert exc.value.code in ("already_signed", "field_signed")  # the signing tool refuses first
    db.session.rollback()
    before = reports.require_report(r.tender_id).pdf_sha256
    # member 1 uploads a revision signed with member 0's certificate: refused, nothing changes
    from cryptography import x509  # noqa: F401

    from core.identity.ca import load_ca_certificate
    from evaluation.report_verify import sign_report
    report = reports.require_report(r.tender_id)
    field = reports.field_of_person(report, r.experts[1].id)["field"]
    key, cert = keys[0]
    signed = sign_report(reports.current_pdf(report), field, key, cert, [load_ca_certificate()], field)
    with pytest.raises(DomainError) as exc:
        reports.accept_signature(r.member_actor(1), r.tender_id, signed)
    assert exc.value.code == "not_your_certificate"
    db.session.rollback()
    assert reports.require_report(r.tender_id).pdf_sha256 == before


def test_tampered_upload_is_refused(make_room, certify):
    r = make_room(experts=5, bidders=4)
    complete(r)
    from cryptography import x509

    from core.identity.ca import load_ca_certificate
    from evaluation.report_verify import sign_report
    key, row = certify(person=r.experts[2])
    db.session.commit()
    cert = x509.load_pem_x509_certificate(row.pem.encode())
    report = reports.require_report(r.tender_id)
    field = reports.field_of_person(report, r.experts[2].id)["field"]
    held = reports.current_pdf(report)
    signed = bytearray(sign_report(held, field, key, cert, [load_ca_certificate()], field))
    signed[len(held) // 2] ^= 0x01  # a byte of the held revision changed
    with pytest.raises(DomainError):
        reports.accept_signature(r.member_actor(2), r.tender_id, bytes(signed))
    db.session.rollback()
    assert reports.require_report(r.tender_id).signatures == []


def test_publicity_objection_and_award(make_room, certify, kit):
    r = make_room(experts=5, bidders=4)
    complete(r)
    manager = r.host_actor
    with pytest.raises(DomainError) as exc:
        awards.start_publicity(manager, r.tender_id)  # report not signed yet
    assert exc.value.code == "report_not_signed"
    db.session.rollback()
    sign_all(r, certify)
    publicity = awards.start_publicity(manager, r.tender_id)
    db.session.commit()
    assert r.tender.status == TenderStatus.PUBLICITY and publicity.days == 3
    objection = awards.raise_objection(r.bidder_actor(1), r.tender_id, "我方对技术评分有异议。")
    db.session.commit()
    with pytest.raises(DomainError) as exc:
        awards.award(manager, r.tender_id)
    assert exc.value.code == "publicity_running"
    db.session.rollback()
    clock.travel(timedelta(days=3, minutes=1))
    with pytest.raises(DomainError) as exc:
        awards.raise_objection(r.bidder_actor(2), r.tender_id, "too late")
    assert exc.value.code == "not_in_publicity"
    db.session.rollback()
    with pytest.raises(DomainError) as exc:
        awards.award(manager, r.tender_id)
    assert exc.value.code == "objection_open"
    db.session.rollback()
    awards.answer_objection(manager, r.tender_id, objection.id, "经复核，评分无误。")
    db.session.commit()
    made = awards.award(manager, r.tender_id)
    db.session.commit()
    assert r.tender.status == TenderStatus.AWARDED
    stored = outcome.result_of(r.evaluation_id)
    first = stored.lots[0]["candidates"][0]
    assert [a.bid_opening_id for a in made] == [first["bid_opening_id"]]
    assert db.session.scalar(select(Award.amount)) == Decimal(first["price"])
    package = build_release_package([r.tender], ocid_prefix="ocds-ebid01", base_url="https://ebid.example",
                                    publisher_name="test")
    release = package["releases"][0]
    assert release["tag"] == ["award"] and release["awards"][0]["status"] == "active"
    assert release["awards"][0]["suppliers"][0]["name"] == first["bidder"]
    assert validate_package(package) == []
    # the contract: recorded once per lot, after the notice
    lot_id = r.tender.lots[0].id
    signed = awards.record_contract(manager, r.tender_id, lot_id)
    db.session.commit()
    assert signed.contract_signed_at is not None
    with pytest.raises(DomainError) as exc:
        awards.record_contract(manager, r.tender_id, lot_id)
    assert exc.value.code == "contract_recorded"
    db.session.rollback()
    with pytest.raises(DomainError):
        awards.record_contract(r.bidder_actor(0), r.tender_id, lot_id)  # only the tender's staff
    db.session.rollback()
    assert "award.contract" in set(db.session.scalars(select(AuditEvent.action)))


def test_abnormally_low_price_needs_explanation_then_a_decision(make_room):
    r = make_room(experts=5, bidders=5, prices=["950000.00", "940000.00", "960000.00", "600000.00", "930000.00"])
    low = r.bid_ids[3]
    results_support_to_summary(r)
    computed = results.compute(r.evaluation)
    assert low in computed.undecided_low
    room.write_summary(r.member_actor(0), r.evaluation_id, "summary")
    db.session.commit()
    with pytest.raises(DomainError) as exc:
        room.complete_evaluation(r.member_actor(0), r.evaluation_id)
    assert exc.value.code == "low_price_undecided"
    db.session.rollback()
    with pytest.raises(DomainError) as exc:
        outcome.decide_low_price(r.member_actor(0), r.evaluation_id, low, "rejected", "below cost")
    assert exc.value.code == "explanation_missing"
    db.session.rollback()
    c = room.ask_clarification(r.member_actor(0), r.evaluation_id, low, "请说明报价明显偏低的理由并提供证明材料。")
    db.session.commit()
    room.answer_clarification(r.bidder_actor(3), c.id, "我方有自有设备，成本较低。")
    db.session.commit()
    outcome.decide_low_price(r.member_actor(0), r.evaluation_id, low, "rejected", "说明不能证明其报价不低于成本")
    db.session.commit()
    room.complete_evaluation(r.member_actor(0), r.evaluation_id)
    db.session.commit()
    row = results.bid_row(outcome.result_of(r.evaluation_id).lots, low)[1]
    assert row["valid"] is False and row["invalid_reason"] == "rejected" and row["rank"] is None


def results_support_to_summary(r):
    from tests.evaluation.results_support import to_summary
    to_summary(r)


def test_publication_refuses_a_bad_method_and_keeps_the_draft(create_tender):
    from bidding import services
    from core.identity.access import actor_for
    tender = create_tender(evaluation_method={"method": "comprehensive", "deviation": {"above": "-1"}})
    db.session.commit()
    before = dict(tender.evaluation_method)
    with pytest.raises(DomainError) as exc:
        services.publish_tender(actor_for(tender.created_by, "tenderer", tender.tenderer_id), tender)
    db.session.rollback()
    assert any("deviation" in k for k in exc.value.to_dict()["fields"])
    db.session.refresh(tender)
    assert tender.status == TenderStatus.DRAFT and tender.evaluation_method == before


def test_publication_writes_the_method_out_in_full(create_tender):
    tender = create_tender(publish=True, evaluation_method={"method": "comprehensive", "benchmark": "mean"})
    db.session.commit()
    method = tender.evaluation_method
    assert method["method_version"] == "1" and method["publicity_days"] == 3
    assert method["benchmark"] == "mean" and method["rounding"] == {"places": 2, "mode": "half_up"}
