"""Claims (索赔): who may file, when, with what; relayed through the outbox; paid or denied; overdue."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import select

from bidding.models import TenderStatus
from core.audit import AuditEvent
from core.clock import clock, now
from core.db import db
from core.errors import ValidationFailed
from core.notifications import Notification
from guarantees import OrderState, apply_for_guarantee, bind_to_bid, check_for_opening, file_claim, protocol
from guarantees.errors import ClaimRefused, NotBeneficiary
from guarantees.models import ClaimState, GuaranteeClaim
from guarantees.tasks import watch_deadlines_task
from tests.guarantees.conftest import issue, post, signed, snapshot, staff

EVIDENCE = [("revocation-letter.pdf", b"%PDF-1.4 the bidder's revocation"), ("notice.txt", b"notice")]


def evidence():
    return [(name, io.BytesIO(data)) for name, data in EVIDENCE]


def fresh(obj):
    db.session.expire_all()
    return db.session.get(type(obj), obj.id)


@pytest.fixture
def bound(app, client, market, tender, bidder):
    """A letter bound to the bidder's bid, the opening passed and checked: the order."""
    order = apply_for_guarantee(bidder[2], tender, tender.lots[0], market[1], "plain")
    db.session.commit()
    issue(client, market[2], order, guarantee_no="GN-C1")
    bind_to_bid(bidder[2], fresh(order))
    db.session.commit()
    clock.freeze(tender.bid_deadline_at + timedelta(hours=1))
    tender.status = TenderStatus.OPENING  # as if enough bids were sealed (else it fails and letters are released)
    check_for_opening(staff(tender), tender)
    db.session.commit()
    return fresh(order)


def claim_result(client, keys, order, claim, status, amount_paid, **extra):
    return post(client, signed(keys, protocol.CLAIM_RESULT, order.order_no, {
        "claim_no": claim.claim_no, "status": status, "amount_paid": amount_paid, "reason": "",
        "decided_at": now(), **extra}))


def test_claim_is_sent_and_paid(client, market, bound, tender, stub_issuer):
    claim = file_claim(staff(tender), bound, "revoked_after_deadline", "20000.00",
                       "The bidder revoked its bid after the deadline (条例 §35).", evidence())
    db.session.commit()
    assert fresh(bound).state == OrderState.CLAIMED
    claim = fresh(claim)
    assert claim.state == ClaimState.SENT and claim.answer_due_at == now() + timedelta(days=7)
    _, message = stub_issuer.received[-1]
    assert message["type"] == "Claim" and message["data"]["amount"] == "20000.00"
    assert message["data"]["evidence"] == [e["sha256"] for e in claim.evidence] and len(claim.evidence) == 2
    response = claim_result(client, market[2], bound, claim, "paid", "20000.00")
    assert response.get_json()["state"] == "paid"
    claim = fresh(claim)
    assert claim.state == ClaimState.PAID and claim.amount_paid == D("20000.00")
    before = snapshot()
    assert claim_result(client, market[2], bound, claim, "paid", "20000.00").get_json()["outcome"] == "absorbed"
    response = claim_result(client, market[2], bound, claim, "denied", "0")
    assert response.status_code == 409 and snapshot()["orders"] == before["orders"]


def test_claim_denied(client, market, bound, tender):
    claim = file_claim(staff(tender), bound, "refused_contract", "5000.00",
                       "The winner refused to sign the contract (条例 §74).", evidence())
    db.session.commit()
    assert claim_result(client, market[2], bound, claim, "denied", "0", reason="not covered").status_code == 200
    assert fresh(bound).state == OrderState.DENIED and fresh(claim).decision_reason == "not covered"


@pytest.mark.parametrize(("amount", "status"), [("20000.01", "paid"), ("0", "paid"), ("abc", "paid")])
def test_claim_result_amounts_are_checked(client, market, bound, tender, amount, status):
    claim = file_claim(staff(tender), bound, "refused_contract", "20000.00", "Refused to sign the contract.",
                       evidence())
    db.session.commit()
    response = claim_result(client, market[2], bound, claim, status, amount)
    assert response.status_code == 400 and fresh(bound).state == OrderState.CLAIMED


def test_who_when_and_how_much(app, bound, tender, bidder, create_tender):
    reason = "The bidder revoked its bid after the deadline."
    with pytest.raises(NotBeneficiary):
        file_claim(bidder[2], bound, "revoked_after_deadline", "1.00", reason, evidence())
    other = create_tender(publish=True)
    with pytest.raises(NotBeneficiary):
        file_claim(staff(other), bound, "revoked_after_deadline", "1.00", reason, evidence())
    with pytest.raises(ValidationFailed) as refused:
        file_claim(staff(tender), bound, "revoked_after_deadline", "20000.01", reason, evidence())
    assert "amount" in refused.value.fields
    with pytest.raises(ValidationFailed):
        file_claim(staff(tender), bound, "revoked_after_deadline", "100.00", reason, [])
    with pytest.raises(ValidationFailed):
        file_claim(staff(tender), bound, "act_of_god", "100.00", reason, evidence())
    clock.freeze(bound.valid_until + timedelta(seconds=1))
    with pytest.raises(ClaimRefused) as refused:
        file_claim(staff(tender), bound, "revoked_after_deadline", "100.00", reason, evidence())
    assert "expired" in refused.value.to_dict()["message"]
    assert fresh(bound).state == OrderState.VERIFIED_AT_OPENING
    assert db.session.scalar(select(GuaranteeClaim.id)) is None


def test_no_claim_before_the_deadline_or_twice(app, client, market, tender, bidder):
    order = apply_for_guarantee(bidder[2], tender, tender.lots[0], market[1], "plain")
    db.session.commit()
    issue(client, market[2], order, guarantee_no="GN-C2")
    bind_to_bid(bidder[2], fresh(order))
    db.session.commit()
    with pytest.raises(ClaimRefused) as refused:
        file_claim(staff(tender), fresh(order), "revoked_after_deadline", "100.00", "Revoked the bid early.",
                   evidence())
    assert "deadline has not passed" in refused.value.to_dict()["message"]
    clock.freeze(tender.bid_deadline_at + timedelta(hours=2))
    file_claim(staff(tender), fresh(order), "revoked_after_deadline", "100.00", "Revoked after the deadline.",
               evidence())
    db.session.commit()
    with pytest.raises(ClaimRefused):
        file_claim(staff(tender), fresh(order), "revoked_after_deadline", "100.00", "Again, the same.", evidence())


def test_unanswered_claim_is_flagged_once(app, bound, tender):
    claim = file_claim(staff(tender), bound, "no_performance_security", "1000.00",
                       "No performance security was given.", evidence())
    db.session.commit()
    clock.travel(timedelta(days=7, minutes=1))
    assert watch_deadlines_task()["claims_overdue"] == 1
    assert watch_deadlines_task()["claims_overdue"] == 0
    assert fresh(claim).overdue_flagged_at is not None
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "guarantee.claim.overdue")) is not None
    note = db.session.scalar(select(Notification).where(Notification.kind == "guarantee_claim_overdue"))
    assert note.person_id == tender.created_by_id and claim.claim_no in note.subject


def test_api_claim_upload(app, bound, tender, api_as):
    client = api_as(tender.created_by)
    response = client.post(f"/api/guarantees/orders/{bound.order_no}/claims", data={
        "trigger": "added_conditions", "amount": "300.50", "reason": "The winner added conditions to the contract.",
        "evidence": [(io.BytesIO(b"minutes"), "minutes.txt"), (io.BytesIO(b"letter"), "letter.txt")]},
        content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["amount"] == "300.50" and [e["filename"] for e in body["evidence"]] == ["minutes.txt", "letter.txt"]
    assert fresh(bound).state == OrderState.CLAIMED
