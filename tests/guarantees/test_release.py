"""Release (退保): on withdrawal, contract signing, tender cancelled or failed; the 5-day watch."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

import bidding
from bidding.models import TenderStatus
from core.actor import Actor
from core.audit import AuditEvent
from core.clock import clock, now
from core.db import db
from core.errors import Forbidden
from guarantees import OrderState, apply_for_guarantee, bind_to_bid, release
from guarantees.errors import DeadlinePassed
from guarantees.models import GuaranteeOrder, OutboundMessage, OutboxState
from guarantees.release import release_sweep
from guarantees.tasks import release_sweep_task, watch_deadlines_task
from tests.guarantees.conftest import issue, staff


def fresh(order):
    db.session.expire_all()
    return db.session.get(GuaranteeOrder, order.id)


@pytest.fixture
def two_orders(app, client, market, tender, create_bidder):
    """One bound letter and one order still waiting for the issuer's decision."""
    _, _, first = create_bidder()
    _, _, second = create_bidder()
    issued = apply_for_guarantee(first, tender, tender.lots[0], market[1], "plain")
    waiting = apply_for_guarantee(second, tender, tender.lots[0], market[1], "plain")
    db.session.commit()
    issue(client, market[2], issued, guarantee_no="GN-R1")
    bind_to_bid(first, fresh(issued))
    db.session.commit()
    return fresh(issued), fresh(waiting), first


def release_messages(order) -> list[OutboundMessage]:
    return list(db.session.scalars(select(OutboundMessage).where(OutboundMessage.order_id == order.id,
                                                                 OutboundMessage.type == "Release")))


def test_cancelling_the_tender_releases_and_cancels(app, tender, two_orders, stub_issuer):
    issued, waiting, _ = two_orders
    bidding.cancel_tender(staff(tender), tender, "The project was withdrawn.", expected_version=tender.version)
    db.session.commit()
    issued, waiting = fresh(issued), fresh(waiting)
    assert issued.state == OrderState.RELEASED and issued.release_reason == "tender_cancelled"
    assert issued.release_trigger_at == tender.cancelled_at
    assert waiting.state == OrderState.CANCELLED
    assert sorted(stub_issuer.types()[-2:]) == ["OrderCancel", "Release"]
    [message] = release_messages(issued)
    assert message.payload == {"guarantee_no": "GN-R1", "reason": "tender_cancelled"}
    assert release_sweep() == 0  # idempotent: nothing left to release
    assert len(release_messages(issued)) == 1


def test_a_failed_tender_releases_through_the_closing_signal(app, tender, two_orders):
    issued, _, _ = two_orders
    clock.freeze(tender.bid_deadline_at + timedelta(seconds=1))
    assert bidding.close_tender(Actor.system("tests"), tender.id) == "failed"  # no bids were sealed
    db.session.commit()
    assert fresh(issued).state == OrderState.RELEASED and fresh(issued).release_reason == "tender_failed"


def test_the_sweep_catches_a_missed_signal(app, tender, two_orders):
    issued, waiting, _ = two_orders
    tender.status = TenderStatus.CANCELLED  # changed without the service (e.g. by an older process)
    db.session.commit()
    assert release_sweep_task() == 2
    assert fresh(issued).state == OrderState.RELEASED and fresh(waiting).state == OrderState.CANCELLED
    assert release_sweep_task() == 0


def test_bidder_withdraws_before_the_deadline_only(app, tender, two_orders):
    issued, _, bidder_actor = two_orders
    with pytest.raises(Forbidden):
        release(bidder_actor, issued, "contract_signed")
    clock.freeze(tender.bid_deadline_at)
    with pytest.raises(DeadlinePassed):
        release(bidder_actor, issued, "withdrawn_before_deadline")
    clock.reset()
    release(bidder_actor, issued, "withdrawn_before_deadline")
    db.session.commit()
    assert fresh(issued).state == OrderState.RELEASED
    release(staff(tender), fresh(issued), "contract_signed")  # already released: nothing more
    assert len(release_messages(issued)) == 1


def test_release_not_delivered_within_5_days_is_flagged_once(app, make_issuer, policy, client, tender,
                                                            create_bidder):
    _, product, keys = make_issuer("DOWN", url="http://127.0.0.1:9/api")
    _, _, bidder_actor = create_bidder()
    order = apply_for_guarantee(bidder_actor, tender, tender.lots[0], product, "plain")
    db.session.commit()
    issue(client, keys, order, guarantee_no="GN-R2")  # the Result proves the issuer had it
    clock.freeze(now())
    release(staff(tender), fresh(order), "contract_signed")
    db.session.commit()
    clock.travel(timedelta(days=4, hours=23))
    assert watch_deadlines_task()["releases_overdue"] == 0
    clock.travel(timedelta(hours=2))
    assert watch_deadlines_task()["releases_overdue"] == 1
    assert watch_deadlines_task()["releases_overdue"] == 0
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "guarantee.release.overdue")) == 1
    assert release_messages(order)[0].state == OutboxState.PENDING  # still trying, nothing lost


def test_delivered_release_is_not_flagged(app, tender, two_orders):
    issued, _, _ = two_orders
    release(staff(tender), issued, "contract_signed")
    db.session.commit()
    clock.travel(timedelta(days=6))
    assert watch_deadlines_task()["releases_overdue"] == 0


def test_a_withdrawn_bid_frees_its_letter(app, tender, two_orders):
    issued, _, bidder_actor = two_orders
    bid = SimpleNamespace(lot_id=issued.lot_id, organisation_id=issued.bidder_id)  # the signal's contract
    bidding.bid_withdrawn.send(bid, actor=bidder_actor, at=now())
    db.session.commit()
    assert fresh(issued).state == OrderState.RELEASED
    assert fresh(issued).release_reason == "withdrawn_before_deadline"


def test_one_bidders_letter_is_released_for_its_lot_only(app, tender, two_orders, stub_issuer):
    """The award releases a bidder's letter (not awarded), the contract the winner's (条例 §57)."""
    from guarantees.release import ReleaseReason, release_for_bidder

    issued, waiting, first = two_orders
    with pytest.raises(Forbidden):  # a bidder cannot release its own letter this way
        release_for_bidder(first, tender, tender.lots[0].id, issued.bidder_id, ReleaseReason.NOT_AWARDED)
    db.session.rollback()
    assert release_for_bidder(staff(tender), tender, tender.lots[0].id, waiting.bidder_id,
                              ReleaseReason.NOT_AWARDED) == 0  # not issued: nothing in force to release
    assert release_for_bidder(staff(tender), tender, tender.lots[0].id, issued.bidder_id,
                              ReleaseReason.CONTRACT_SIGNED) == 1
    db.session.commit()
    issued, waiting = fresh(issued), fresh(waiting)
    assert issued.state == OrderState.RELEASED and issued.release_reason == "contract_signed"
    assert waiting.state != OrderState.RELEASED
    [message] = release_messages(issued)
    assert message.payload == {"guarantee_no": "GN-R1", "reason": "contract_signed"}
