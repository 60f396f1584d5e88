"""Issuer callbacks over HTTP: refused when forged, replayed, stale or unknown; idempotent; in order."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.clock import clock, now
from core.db import db
from guarantees import OrderState, apply_for_guarantee, cancel_order, protocol, release
from guarantees.models import GuaranteeOrder, OutboundMessage, OutboxState, SeenNonce
from tests.guarantees.conftest import (
    IssuerKeys,
    approve,
    issue,
    letter_message,
    letter_pdf,
    post,
    signed,
    snapshot,
    staff,
)


@pytest.fixture
def order(app, market, tender, bidder):
    result = apply_for_guarantee(bidder[2], tender, tender.lots[0], market[1], "plain")
    db.session.commit()
    db.session.expire_all()
    return db.session.get(GuaranteeOrder, result.id)


def state(order) -> OrderState:
    db.session.expire_all()
    return db.session.get(GuaranteeOrder, order.id).state


def refused(client, message, status, code):
    before = snapshot()
    response = post(client, message)
    assert (response.status_code, response.get_json()["code"]) == (status, code), response.get_json()
    assert snapshot() == before  # nothing changed: order, outbox, audit trail
    return response


def test_result_then_letter_issue_the_order(client, market, order):
    assert order.state == OrderState.APPLIED
    response = approve(client, market[2], order, guarantee_no="GN-1")
    assert response.status_code == 200 and response.get_json() == {"accepted": True, "outcome": "applied",
                                                                   "state": "approved"}
    pdf = letter_pdf(market[2], ["GN-1"])
    response = post(client, letter_message(market[2], order, pdf, guarantee_no="GN-1"))
    assert response.get_json()["state"] == "issued"
    db.session.expire_all()
    order = db.session.get(GuaranteeOrder, order.id)
    assert order.letter_sha256 == hashlib.sha256(pdf).hexdigest() == order.letter_file_sha256
    assert order.verification_code == "ABCDEFGH23" and order.guarantee_no == "GN-1"


def test_unknown_sender(client, order):
    stranger = IssuerKeys.make("NOBODY")
    refused(client, signed(stranger, protocol.RESULT, order.order_no, {"status": "rejected"}), 401,
            "unknown_sender")


def test_forged_signature(client, market, order):
    forger = IssuerKeys.make("BANK1")  # claims to be BANK1, signs with another key
    refused(client, signed(forger, protocol.RESULT, order.order_no, {"status": "rejected", "reason": "x"}), 401,
            "bad_signature")
    tampered = signed(market[2], protocol.RESULT, order.order_no, {"status": "rejected", "reason": "x"})
    tampered["data"]["reason"] = "y"
    refused(client, tampered, 401, "bad_signature")
    assert state(order) == OrderState.APPLIED


@pytest.mark.parametrize("skew", [timedelta(seconds=-301), timedelta(seconds=301), timedelta(hours=2)])
def test_stale_or_future_timestamp(client, market, order, skew):
    clock.freeze(now())  # the skew is exact, however slow the request (a second off would pass +301 s)
    refused(client, signed(market[2], protocol.RESULT, order.order_no, {"status": "rejected"}, at=now() + skew),
            401, "stale_timestamp")


def test_replayed_nonce(client, market, order):
    first = signed(market[2], protocol.RESULT, order.order_no, {"status": "rejected", "reason": "risk"})
    assert post(client, first).status_code == 200
    refused(client, first, 409, "replayed_nonce")
    again = signed(market[2], protocol.RESULT, order.order_no, {"status": "rejected", "reason": "risk"},
                   nonce=first["nonce"])  # re-signed, same nonce
    refused(client, again, 409, "replayed_nonce")
    assert db.session.scalar(select(func.count()).select_from(SeenNonce)) == 1


def test_unknown_order_and_another_issuers_order(client, market, make_issuer, order):
    refused(client, signed(market[2], protocol.RESULT, "G-NOPE", {"status": "rejected"}), 400, "unknown_order")
    _, _, other_keys = make_issuer("BANK2")
    refused(client, signed(other_keys, protocol.RESULT, order.order_no, {"status": "rejected"}), 400,
            "unknown_order")


def test_duplicate_callbacks_are_absorbed(client, market, order):
    pdf = issue(client, market[2], order, guarantee_no="GN-7")
    before = snapshot()
    response = approve(client, market[2], order, guarantee_no="GN-7")  # the same result, a fresh nonce
    assert response.status_code == 200 and response.get_json()["outcome"] == "absorbed"
    response = post(client, letter_message(market[2], order, pdf, guarantee_no="GN-7"))
    assert response.status_code == 200 and response.get_json()["outcome"] == "absorbed"
    after = snapshot()
    assert after["orders"] == before["orders"] and after["audit"] == before["audit"]


def test_contradicting_results_are_refused(client, market, order):
    issue(client, market[2], order, guarantee_no="GN-8")
    refused(client, signed(market[2], protocol.RESULT, order.order_no, {"status": "rejected", "reason": "no"}),
            409, "state_conflict")
    refused(client, signed(market[2], protocol.RESULT, order.order_no, {
        "status": "approved", "guarantee_no": "GN-OTHER", "issued_at": now(), "valid_from": now(),
        "valid_until": now() + timedelta(days=200)}), 409, "state_conflict")
    other_pdf = letter_pdf(market[2], ["another letter"])
    refused(client, letter_message(market[2], order, other_pdf, guarantee_no="GN-8"), 409, "state_conflict")
    assert state(order) == OrderState.ISSUED


def test_out_of_order_letter_is_refused_then_accepted_after_result(client, market, order):
    pdf = letter_pdf(market[2], ["GN-9"])
    refused(client, letter_message(market[2], order, pdf, guarantee_no="GN-9"), 409, "state_conflict")
    assert approve(client, market[2], order, guarantee_no="GN-9").status_code == 200
    response = post(client, letter_message(market[2], order, pdf, guarantee_no="GN-9"))  # the issuer retries
    assert response.status_code == 200 and state(order) == OrderState.ISSUED


def test_letter_hash_must_match(client, market, order):
    approve(client, market[2], order, guarantee_no="GN-10")
    pdf = letter_pdf(market[2], ["GN-10"])
    message = letter_message(market[2], order, pdf, guarantee_no="GN-10")
    message["data"]["sha256"] = "0" * 64
    message = signed(market[2], protocol.LETTER, order.order_no, message["data"])
    response = refused(client, message, 400, "malformed_message")
    assert "does not match the PDF" in response.get_json()["message"]


def test_rejection_after_cancellation_is_refused(client, market, order, bidder):
    cancel_order(bidder[2], order, "found a cheaper one")
    db.session.commit()
    refused(client, signed(market[2], protocol.RESULT, order.order_no, {"status": "rejected"}), 409,
            "state_conflict")


def test_result_for_an_order_still_in_the_outbox(client, make_issuer, policy, tender, bidder):
    """The 202 got lost: the issuer's Result proves it has the order; the queued OrderApply stops."""
    _, product, keys = make_issuer("SLOW", url="http://127.0.0.1:9/api")
    order = apply_for_guarantee(bidder[2], tender, tender.lots[0], product, "plain")
    db.session.commit()
    assert state(order) == OrderState.DRAFT
    assert approve(client, keys, order, guarantee_no="GN-11").status_code == 200
    assert state(order) == OrderState.APPROVED
    assert db.session.scalar(select(OutboundMessage.state).where(OutboundMessage.order_id == order.id)) == \
        OutboxState.SENT


def test_callbacks_need_no_csrf_token(csrf_app, client, market, order):
    response = approve(client, market[2], order, guarantee_no="GN-12")
    assert response.status_code == 200


def test_malformed_bodies(client, market, order):
    assert post(client, {"hello": "world"}).status_code == 400
    response = client.post(protocol.CALLBACK_PATH, data=b"\xff\xfe", content_type="application/json")
    assert response.status_code == 400 and response.get_json()["code"] == "malformed_message"
    message = signed(market[2], protocol.ORDER_APPLY, order.order_no, {})
    assert post(client, message).get_json()["code"] == "malformed_message"  # not a callback type


def test_release_notify_closes_a_released_letter_and_claim_result_needs_its_claim(client, market, order, tender):
    issue(client, market[2], order, guarantee_no="GN-13")
    db.session.expire_all()
    release(staff(tender), db.session.get(GuaranteeOrder, order.id), "contract_signed")
    db.session.commit()
    message = signed(market[2], protocol.RELEASE_NOTIFY, order.order_no,
                     {"guarantee_no": "GN-13", "released_at": now()})
    assert post(client, message).get_json()["state"] == "closed"
    again = signed(market[2], protocol.RELEASE_NOTIFY, order.order_no,
                   {"guarantee_no": "GN-13", "released_at": now()})
    assert post(client, again).get_json()["outcome"] == "absorbed"
    refused(client, signed(market[2], protocol.CLAIM_RESULT, order.order_no, {
        "claim_no": "C-NONE", "status": "paid", "amount_paid": "1.00", "reason": "", "decided_at": now()}),
        400, "malformed_message")


def test_clock_is_the_platform_clock(client, market, order):
    clock.freeze(now() + timedelta(days=1))
    refused(client, signed(market[2], protocol.RESULT, order.order_no, {"status": "rejected"},
                           at=now() - timedelta(days=1)), 401, "stale_timestamp")
