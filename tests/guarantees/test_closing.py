"""Closing orders (保函结案): paid claims, expired letters, late release confirmations; idempotent."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core.audit import AuditEvent
from core.clock import clock, now
from core.db import db
from guarantees import (
    OrderState,
    apply_for_guarantee,
    bind_to_bid,
    file_claim,
    order_progress,
    protocol,
    release,
)
from guarantees.closing import GRACE_AFTER_EXPIRY, CloseReason, close_reason
from guarantees.models import GuaranteeOrder
from guarantees.tasks import watch_deadlines_task
from tests.guarantees.conftest import issue, post, signed, staff

S = OrderState
UNTIL = datetime(2026, 6, 30, 16, 0, tzinfo=UTC)
BEFORE, JUST_BEFORE, AFTER = UNTIL, UNTIL + GRACE_AFTER_EXPIRY - timedelta(seconds=1), UNTIL + GRACE_AFTER_EXPIRY


@pytest.mark.parametrize(("state", "at", "expected"), [
    (S.PAID, BEFORE, CloseReason.CLAIM_PAID),           # a paid claim is settled at once
    (S.PAID, AFTER, CloseReason.CLAIM_PAID),
    (S.ISSUED, BEFORE, None),
    (S.ISSUED, JUST_BEFORE, None),                        # a day's grace after the validity ends
    (S.ISSUED, AFTER, CloseReason.EXPIRED),
    (S.BOUND_TO_BID, AFTER, CloseReason.EXPIRED),
    (S.VERIFIED_AT_OPENING, AFTER, CloseReason.EXPIRED),
    (S.RELEASED, BEFORE, None),                           # waits for the issuer's confirmation
    (S.RELEASED, AFTER, CloseReason.EXPIRED),             # never confirmed: expiry ends it anyway
    (S.DENIED, BEFORE, None),                             # a denied claim leaves the letter in force
    (S.DENIED, AFTER, CloseReason.EXPIRED),
    (S.CLAIMED, AFTER, None),                             # the claim still waits for its answer
    (S.APPROVED, AFTER, None),
    (S.DRAFT, AFTER, None),
    (S.CANCELLED, AFTER, None),
    (S.CLOSED, AFTER, None),                              # closing is idempotent
])
def test_close_reason(state, at, expected):
    assert close_reason(state, UNTIL, at) == expected


def test_close_reason_without_validity():
    assert close_reason(S.ISSUED, None, AFTER) is None


def fresh(order) -> GuaranteeOrder:
    db.session.expire_all()
    return db.session.get(GuaranteeOrder, order.id)


def closes(action: str = "guarantee.order.close") -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action))


@pytest.fixture
def bound(app, client, market, tender, bidder):
    order = apply_for_guarantee(bidder[2], tender, tender.lots[0], market[1], "plain")
    db.session.commit()
    issue(client, market[2], order, guarantee_no="GN-X1")
    bind_to_bid(bidder[2], fresh(order))
    db.session.commit()
    return fresh(order)


def _claim(client, market, tender, order, status: str) -> None:
    clock.freeze(tender.bid_deadline_at + timedelta(hours=1))
    claim = file_claim(staff(tender), order, "revoked_after_deadline", "20000.00",
                       "The bidder revoked its bid after the deadline (条例 §35).",
                       [("demand.pdf", io.BytesIO(b"%PDF-1.4 demand"))])
    db.session.commit()
    response = post(client, signed(market[2], protocol.CLAIM_RESULT, order.order_no, {
        "claim_no": claim.claim_no, "status": status, "amount_paid": "20000.00" if status == "paid" else "0",
        "reason": "", "decided_at": now()}))
    assert response.get_json()["state"] == status


def test_paid_claim_closes_at_the_next_watch(client, market, tender, bound):
    _claim(client, market, tender, bound, "paid")
    assert watch_deadlines_task()["orders_closed"] == 1
    order = fresh(bound)
    assert (order.state, order.close_reason, order.closed_at) == (S.CLOSED, "claim_paid", now())
    assert order_progress(order).text == "Closed: the issuer paid the claim."
    assert watch_deadlines_task()["orders_closed"] == 0 and closes() == 1


def test_denied_claim_closes_when_the_letter_expires(client, market, tender, bound):
    _claim(client, market, tender, bound, "denied")
    assert watch_deadlines_task()["orders_closed"] == 0
    clock.freeze(fresh(bound).valid_until.replace(tzinfo=UTC) + GRACE_AFTER_EXPIRY)
    assert watch_deadlines_task()["orders_closed"] == 1
    assert (fresh(bound).state, fresh(bound).close_reason) == (S.CLOSED, "expired")


def test_claim_waiting_for_its_answer_is_never_closed(client, market, tender, bound):
    clock.freeze(tender.bid_deadline_at + timedelta(hours=1))
    file_claim(staff(tender), bound, "revoked_after_deadline", "100.00", "Revoked after the deadline, see demand.",
               [("demand.pdf", io.BytesIO(b"%PDF-1.4 demand"))])
    db.session.commit()
    clock.freeze(fresh(bound).valid_until.replace(tzinfo=UTC) + timedelta(days=30))
    assert watch_deadlines_task()["orders_closed"] == 0
    assert fresh(bound).state == S.CLAIMED


def test_letter_expiring_in_force_closes_after_the_grace(bound):
    until = fresh(bound).valid_until.replace(tzinfo=UTC)
    clock.freeze(until + GRACE_AFTER_EXPIRY - timedelta(minutes=1))
    assert watch_deadlines_task()["orders_closed"] == 0
    clock.travel(timedelta(minutes=1))
    assert watch_deadlines_task()["orders_closed"] == 1
    order = fresh(bound)
    assert (order.state, order.close_reason) == (S.CLOSED, "expired")
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "guarantee.order.close"))
    assert event.summary["state"] == ["bound_to_bid", "closed"] and event.summary["reason"] == "expired"


def test_release_confirmed_after_the_order_closed_at_expiry(client, market, tender, bound):
    release(staff(tender), bound, "contract_signed")
    db.session.commit()
    until = fresh(bound).valid_until.replace(tzinfo=UTC)
    clock.freeze(until + GRACE_AFTER_EXPIRY)
    assert watch_deadlines_task()["orders_closed"] == 1
    message = signed(market[2], protocol.RELEASE_NOTIFY, bound.order_no,
                     {"guarantee_no": "GN-X1", "released_at": until - timedelta(days=1)})
    response = post(client, message)
    assert response.status_code == 200 and response.get_json()["outcome"] == "applied"
    order = fresh(bound)
    assert order.state == S.CLOSED and order.close_reason == "expired" and order.release_confirmed_at is not None
    again = signed(market[2], protocol.RELEASE_NOTIFY, bound.order_no,
                   {"guarantee_no": "GN-X1", "released_at": until - timedelta(days=1)})
    assert post(client, again).get_json()["outcome"] == "absorbed"


def test_release_confirmation_closes_with_its_reason(client, market, tender, bound):
    release(staff(tender), bound, "contract_signed")
    db.session.commit()
    response = post(client, signed(market[2], protocol.RELEASE_NOTIFY, bound.order_no,
                                   {"guarantee_no": "GN-X1", "released_at": now()}))
    assert response.get_json()["state"] == "closed"
    order = fresh(bound)
    assert order.close_reason == "release_confirmed"
    assert order_progress(order).text == "Closed: the issuer confirmed the release."
    assert watch_deadlines_task()["orders_closed"] == 0
