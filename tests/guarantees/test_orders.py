"""Offers in random order, applying (rate and premium frozen, outbox), cancelling, waivers, requirements."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import select

from core.clock import clock, now
from core.db import db
from core.errors import Forbidden, ValidationFailed
from core.notifications import Notification
from core.tasks import celery_of
from guarantees import (
    OrderState,
    apply_for_guarantee,
    bond_requirement,
    cancel_order,
    offers,
    order_progress,
    platform_certificate_pem,
    protocol,
    retry_failed,
    use_waiver,
)
from guarantees.errors import AlreadyHasOrder, DeadlinePassed, ProductNotOfferable, WaiverRefused
from guarantees.models import GuaranteeOrder, OutboundMessage, OutboxState, WaiverKind
from guarantees.outbox import MAX_ATTEMPTS, backoff
from guarantees.requirements import BondMode, Form, PolicyInvalid
from guarantees.services import set_issuer_admission, set_product_rate
from guarantees.tasks import send_outbox
from tests.guarantees.conftest import ADMIN, StubIssuer, staff


def refresh(obj):
    db.session.expire_all()
    return db.session.get(type(obj), obj.id)


def test_offers_list_every_admitted_issuer_in_random_order_without_favourite(app, make_issuer, policy, tender,
                                                                             bidder):
    for code, rate in (("BANKA", "0.8"), ("INSB", "0.6"), ("GUARC", "1.0")):
        make_issuer(code, rate=rate, kind="bank" if code.startswith("B") else "insurer")
    lot = tender.lots[0]
    first = Counter()
    orders_seen = set()
    draws = 600
    for _ in range(draws):
        listed = offers(tender, lot, bidder[0])
        assert len(listed) == 3
        first[listed[0].issuer.code] += 1
        orders_seen.add(tuple(o.issuer.code for o in listed))
    assert len(orders_seen) == 6  # every permutation occurs
    for code in ("BANKA", "INSB", "GUARC"):  # each first about a third of the time (p of failing < 1e-6)
        assert 130 < first[code] < 270, first
    premiums = {o.issuer.code: o.premium for o in listed}
    assert premiums == {"BANKA": D("300.00"), "INSB": D("300.00"), "GUARC": D("300.00")}  # 20 000 × ≤1‰ < minimum


def test_offers_can_be_seeded_and_skip_suspended_issuers(app, make_issuer, policy, tender, bidder):
    a, _, _ = make_issuer("BANKA")
    make_issuer("BANKB")
    lot = tender.lots[0]
    assert [o.issuer.code for o in offers(tender, lot, bidder[0], rng=random.Random(1))] == \
        [o.issuer.code for o in offers(tender, lot, bidder[0], rng=random.Random(1))]
    set_issuer_admission(ADMIN, a, False, "licence withdrawn")
    assert [o.issuer.code for o in offers(tender, lot, bidder[0])] == ["BANKB"]


def test_apply_freezes_rate_and_premium_and_queues_order_apply(app, market, tender, bidder, stub_issuer):
    issuer, product, _ = market
    org, _, actor = bidder
    lot = tender.lots[0]
    lot.bond_amount = D("800000.00") * 0 + D("19999.99")
    db.session.commit()
    order = apply_for_guarantee(actor, tender, lot, product, "sealed")
    db.session.commit()
    assert order.premium == D("300.00") and order.rate_permille == D("0.8") and order.amount == D("19999.99")
    assert order.reference_permille == D("1.5")
    assert order.required_valid_until == tender.bid_deadline_at + timedelta(days=90)
    # sent after the commit, by the task, to the issuer's /orders
    order = refresh(order)
    assert order.state == OrderState.APPLIED
    [(path, message)] = stub_issuer.received
    assert path == "/api/orders" and message["type"] == "OrderApply" and message["sender"] == "ebid-platform"
    data = message["data"]
    assert data["amount"] == "19999.99" and data["premium"] == "300.00" and data["rate_permille"] == "0.8000"
    assert data["guarantee_type"] == "sealed" and data["principal"] == {"name": org.name, "uscc": org.uscc}
    assert data["beneficiary"]["uscc"] == tender.tenderer.uscc and data["lot_code"] == lot.code
    assert data["validity_days"] == 90 and data["bid_deadline"].endswith("Z")
    # a later rate change does not touch the order
    set_product_rate(ADMIN, product, "0.5")
    db.session.commit()
    assert refresh(order).rate_permille == D("0.8")


def test_apply_is_refused_with_reasons(app, market, make_issuer, tender, bidder, create_bidder):
    _, product, _ = market
    _, _, actor = bidder
    lot = tender.lots[0]
    with pytest.raises(Forbidden):
        apply_for_guarantee(staff(tender), tender, lot, product, "plain")
    with pytest.raises(ValidationFailed):
        apply_for_guarantee(actor, tender, lot, product, "secret")
    apply_for_guarantee(actor, tender, lot, product, "plain")
    db.session.commit()
    with pytest.raises(AlreadyHasOrder):
        apply_for_guarantee(actor, tender, lot, product, "plain")
    _, _, other = create_bidder()
    set_issuer_admission(ADMIN, product.issuer, False)
    with pytest.raises(ProductNotOfferable):
        apply_for_guarantee(other, tender, lot, product, "plain")
    set_issuer_admission(ADMIN, product.issuer, True)
    clock.freeze(tender.bid_deadline_at)
    with pytest.raises(DeadlinePassed):
        apply_for_guarantee(other, tender, lot, product, "plain")


def test_cancel_while_queued_sends_nothing_but_after_delivery_sends_order_cancel(app, make_issuer, policy, tender,
                                                                               create_bidder, stub_issuer):
    _, down, _ = make_issuer("DOWN", url="http://127.0.0.1:9/api")  # nothing listens on port 9
    _, up, _ = make_issuer("UP", url=stub_issuer.url)
    lot = tender.lots[0]
    _, _, first = create_bidder()
    queued = apply_for_guarantee(first, tender, lot, down, "plain")
    db.session.commit()
    assert refresh(queued).state == OrderState.DRAFT
    cancel_order(first, refresh(queued), "changed my mind")
    db.session.commit()
    types = [(m.type, m.state) for m in db.session.scalars(select(OutboundMessage).where(
        OutboundMessage.order_id == queued.id).order_by(OutboundMessage.id))]
    # it had been tried once (the issuer may have it): an OrderCancel follows, and waits for the issuer too
    assert types[0] == ("OrderApply", OutboxState.CANCELLED) and types[1][0] == "OrderCancel"

    _, _, second = create_bidder()
    sent = apply_for_guarantee(second, tender, lot, up, "plain")
    db.session.commit()
    cancel_order(second, refresh(sent))
    db.session.commit()
    assert refresh(sent).state == OrderState.CANCELLED
    assert stub_issuer.types() == ["OrderApply", "OrderCancel"]
    with pytest.raises(Forbidden):
        cancel_order(first, refresh(sent))


def test_requirement_per_mode(app, create_tender, create_bidder):
    sme, _, _ = create_bidder(is_sme=True)
    big, _, _ = create_bidder(is_sme=False)
    cases = [
        ({}, big, True, (Form.CASH, Form.GUARANTEE), None),
        ({"mode": "guarantee_only", "allowed_issuer_kinds": ["insurer"]}, big, True, (Form.GUARANTEE,), None),
        ({"mode": "waived_all"}, big, False, (Form.CASH, Form.GUARANTEE, Form.WAIVER), WaiverKind.WAIVED_ALL),
        ({"mode": "waived_sme"}, sme, True, (Form.CASH, Form.GUARANTEE, Form.WAIVER), WaiverKind.WAIVED_SME),
        ({"mode": "waived_sme"}, big, True, (Form.CASH, Form.GUARANTEE), None),
        ({"mode": "credit_commitment", "extra_validity_days": 30}, big, True,
         (Form.CREDIT_COMMITMENT, Form.GUARANTEE, Form.CASH), WaiverKind.CREDIT_COMMITMENT),
    ]
    for policy, org, required, forms, waiver in cases:
        tender = create_tender(guarantee_policy=policy)
        req = bond_requirement(tender, tender.lots[0], org)
        assert (req.required, req.accepted_forms, req.waiver_kind) == (required, forms, waiver), policy
        assert req.amount == D("20000.00")
        extra = policy.get("extra_validity_days", 0)
        assert req.valid_until == tender.bid_deadline_at + timedelta(days=90 + extra)
    assert bond_requirement(tender, tender.lots[0], big).mode == BondMode.CREDIT_COMMITMENT


def test_requirement_refuses_unknown_modes_and_illegal_amounts(app, create_tender, bidder):
    tender = create_tender(guarantee_policy={"mode": "cash_only"})
    with pytest.raises(PolicyInvalid) as refused:
        bond_requirement(tender, tender.lots[0], bidder[0])
    assert "'cash_only' is unknown" in refused.value.to_dict()["message"]
    tender = create_tender()
    tender.lots[0].bond_amount = D("20000.01")  # above 2 % of 1 000 000 (bypassing the tender rules)
    with pytest.raises(PolicyInvalid) as refused:
        bond_requirement(tender, tender.lots[0], bidder[0])
    assert "20,000.00" in refused.value.to_dict()["message"]


def test_waivers(app, create_tender, create_bidder):
    sme_org, _, sme = create_bidder(is_sme=True)
    _, _, big = create_bidder(is_sme=False)
    tender = create_tender(publish=True, guarantee_policy={"mode": "waived_sme"})
    lot = tender.lots[0]
    statement = "We are a small enterprise (中小企业) and commit to the tender's terms."
    with pytest.raises(WaiverRefused) as refused:
        use_waiver(big, tender, lot, "waived_sme", statement)
    assert "small and medium-sized" in refused.value.to_dict()["message"]
    waiver = use_waiver(sme, tender, lot, "waived_sme", statement)
    assert waiver.bond_amount == D("20000.00") and waiver.bidder_id == sme_org.id
    with pytest.raises(WaiverRefused):
        use_waiver(sme, tender, lot, "waived_sme", statement)
    with pytest.raises(WaiverRefused):
        use_waiver(sme, tender, lot, "credit_commitment", statement)
    with pytest.raises(ValidationFailed):
        use_waiver(big, tender, lot, "waived_sme", "short")


def test_progress_says_waiting_for_issuer(app, make_issuer, policy, tender, bidder):
    _, product, _ = make_issuer("DOWN", url="http://127.0.0.1:9/api")
    clock.freeze(now())
    order = apply_for_guarantee(bidder[2], tender, tender.lots[0], product, "plain")
    db.session.commit()
    progress = order_progress(refresh(order))
    assert progress.waiting and progress.attempts == 1 and progress.state == "draft"
    assert progress.next_attempt_at == now() + timedelta(seconds=30)
    assert "attempt 1" in progress.text and "next try at" in progress.text
    assert db.session.scalar(select(GuaranteeOrder.last_error)).startswith("URLError")


def test_issuer_down_order_waits_retries_with_backoff_and_completes(app, client, make_issuer, policy, tender,
                                                                    bidder, api_as):
    """Nothing is lost while the issuer is down: the order waits, is retried, the bidder sees it, it completes."""
    stub = StubIssuer()  # its port is chosen, nothing listens yet
    _, product, _ = make_issuer("FLAKY", url=stub.url)
    clock.freeze(now())
    t0 = now()
    order = apply_for_guarantee(bidder[2], tender, tender.lots[0], product, "plain")
    db.session.commit()
    message = db.session.scalar(select(OutboundMessage))
    assert (message.state, message.attempts, message.next_attempt_at) == (OutboxState.PENDING, 1,
                                                                          t0 + timedelta(seconds=30))
    shown = api_as(bidder[1]).get(f"/api/guarantees/orders/{order.order_no}").get_json()
    assert shown["state"] == "draft" and shown["progress"]["waiting"] and shown["progress"]["attempts"] == 1
    assert "attempt 1" in shown["progress"]["text"]

    send_outbox()  # the sweep: not due yet
    assert refresh(message).attempts == 1
    clock.travel(timedelta(seconds=30))
    assert send_outbox() == {str(message.id): "retry"}
    message = refresh(message)
    assert message.attempts == 2 and message.next_attempt_at == now() + timedelta(seconds=60)  # doubled
    clock.travel(timedelta(seconds=60))
    send_outbox()
    message = refresh(message)
    assert message.attempts == 3 and message.next_attempt_at == now() + timedelta(seconds=120)

    stub.start()  # the issuer is back
    try:
        clock.travel(timedelta(seconds=120))
        assert send_outbox() == {str(message.id): "sent"}
    finally:
        stub.stop()
    assert refresh(message).state == OutboxState.SENT
    assert refresh(order).state == OrderState.APPLIED and refresh(order).last_error is None
    [(_, received)] = stub.received
    assert received["order_no"] == order.order_no and received["timestamp"] == protocol.format_timestamp(now())
    platform_key = protocol.public_key_from_pem(platform_certificate_pem())
    protocol.verify_message(received, platform_key, now=now())  # signed at delivery time, by the platform
    shown = api_as(bidder[1]).get(f"/api/guarantees/orders/{order.order_no}").get_json()
    assert shown["state"] == "applied" and not shown["progress"]["waiting"]


def test_backoff_schedule():
    assert [backoff(n).total_seconds() for n in range(1, 10)] == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_issuer_refusal_fails_the_message_and_tells_the_bidder(app, make_issuer, policy, tender, bidder):
    stub = StubIssuer().start()
    stub.status = 400
    try:
        _, product, _ = make_issuer("PICKY", url=stub.url)
        order = apply_for_guarantee(bidder[2], tender, tender.lots[0], product, "plain")
        db.session.commit()
    finally:
        stub.stop()
    message = db.session.scalar(select(OutboundMessage))
    assert refresh(message).state == OutboxState.FAILED and refresh(message).attempts == 1
    progress = order_progress(refresh(order))
    assert progress.waiting and "could not be reached after 1 attempts" in progress.text
    note = db.session.scalar(select(Notification).where(Notification.person_id == bidder[1].id))
    assert order.order_no in note.subject
    assert retry_failed(ADMIN) == 1
    db.session.commit()
    assert refresh(message).state == OutboxState.PENDING  # queued again (the issuer is still away)


def test_gives_up_after_the_attempt_limit(app, make_issuer, policy, tender, bidder):
    _, product, _ = make_issuer("GONE", url="http://127.0.0.1:9/api")
    clock.freeze(now())
    apply_for_guarantee(bidder[2], tender, tender.lots[0], product, "plain")
    db.session.commit()
    for _ in range(MAX_ATTEMPTS):
        clock.travel(timedelta(hours=1))
        send_outbox()
    message = refresh(db.session.scalar(select(OutboundMessage)))
    assert message.state == OutboxState.FAILED and message.attempts == MAX_ATTEMPTS


def test_api_offers_apply_list_cancel_and_waiver(app, market, tender, bidder, api_as, create_tender):
    _, product, _ = market
    client = api_as(bidder[1])
    lot = tender.lots[0]
    body = client.get(f"/api/guarantees/tenders/{tender.id}/lots/{lot.id}/offers").get_json()
    assert body["requirement"]["amount"] == "20000.00" and body["requirement"]["accepted_forms"] == ["cash",
                                                                                                   "guarantee"]
    [offer] = body["offers"]
    assert offer["premium"] == "300.00" and offer["issuer"]["code"] == "BANK1"
    response = client.post("/api/guarantees/orders", json={"tender_id": tender.id, "lot_id": lot.id,
                                                           "product_id": product.id, "guarantee_type": "plain"})
    assert response.status_code == 201, response.get_json()
    order_no = response.get_json()["order_no"]
    [listed] = client.get("/api/guarantees/orders").get_json()
    assert listed["order_no"] == order_no and listed["state"] == "applied"
    response = client.post(f"/api/guarantees/orders/{order_no}/cancel", json={"reason": "not needed"})
    assert response.get_json()["state"] == "cancelled"
    anonymous = app.test_client()
    assert anonymous.post("/api/guarantees/orders", json={}).status_code == 401
    waived = create_tender(publish=True, guarantee_policy={"mode": "waived_all"})
    db.session.commit()
    response = client.post("/api/guarantees/waivers", json={
        "tender_id": waived.id, "lot_id": waived.lots[0].id, "kind": "waived_all",
        "statement": "We commit to the bid terms without a bond."})
    assert response.status_code == 201 and response.get_json()["bond_amount"] == "20000.00"


def test_tasks_are_scheduled_and_documented_in_openapi(app, client):
    schedule = celery_of(app).conf.beat_schedule
    assert schedule["guarantees.send_outbox"]["schedule"] == 30.0
    assert schedule["guarantees.release_sweep"]["schedule"] == 600.0
    assert "guarantees.watch_deadlines" in schedule
    paths = client.get("/api/openapi.json").get_json()["paths"]
    assert {"/api/guarantees/callbacks", "/api/guarantees/verify", "/api/guarantees/orders",
            "/api/guarantees/figures"} <= set(paths)
