"""Group commit of envelopes sent in one request: several accepted in one transaction under one lock."""

from __future__ import annotations

import hashlib
import threading
import time
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from bidding import sealed_group, sealed_spool, translog
from bidding.models import Tender
from bidding.sealed_checks import check_whole, lock_tender, lock_tender_and_log
from bidding.sealed_group import MAX_GROUP, _take
from bidding.sealed_models import Bid, BidUpload, LogEntry, TenderLog, UploadStatus
from bidding.sealed_verify import verify_tender
from bidding.submissions import AcceptedBid, Incoming, accept_many
from core.audit import AuditEvent
from core.audit_verify import verify_chain
from core.db import db
from core.errors import DomainError
from tests.bidding.sealed_support import (  # noqa: F401  (kit_fixture is the kit fixture)
    check_receipt,
    kit_fixture,
    lot_of,
    submit,
)
from tests.bidding.test_sealed_single import whole


def _waiting(lot_id: int, org_id: int):
    return SimpleNamespace(incoming=SimpleNamespace(upload=SimpleNamespace(lot_id=lot_id, organisation_id=org_id)))


@pytest.mark.parametrize(("keys", "group", "rest"), [
    ([(1, 1), (1, 2), (2, 1)], [0, 1, 2], []),  # other bidders, or the same bidder on another lot
    ([(1, 1), (1, 1), (1, 2)], [0, 2], [1]),  # a second envelope of a bidder for a lot waits for the next group
    ([(1, 1), (1, 1), (1, 1)], [0], [1, 2]),
    ([], [], []),
])
def test_a_group_holds_one_envelope_per_bidder_and_lot_in_arrival_order(keys, group, rest):
    items = [_waiting(*k) for k in keys]
    queue = SimpleNamespace(items=list(items))
    assert _take(queue) == [items[i] for i in group]
    assert queue.items == [items[i] for i in rest]


def test_a_group_is_bounded():
    items = [_waiting(1, n) for n in range(MAX_GROUP + 5)]
    queue = SimpleNamespace(items=list(items))
    assert _take(queue) == items[:MAX_GROUP] and queue.items == items[MAX_GROUP:]


def _checked(kit, tender, lot, bidder, envelope: bytes) -> Incoming:
    size = len(envelope)
    checked = check_whole(bidder.actor, tender, lot, sealed_spool.Incoming([envelope]), size,
                          hashlib.sha256(envelope).hexdigest())
    upload = BidUpload(id=hashlib.sha256(envelope).hexdigest()[:32], tender_id=tender.id, lot_id=lot.id,
                       organisation_id=bidder.org.id, person_id=bidder.person.id, declared_size=size,
                       declared_sha256=checked.sha256, received_bytes=size, status=UploadStatus.FINALIZING,
                       created_at=tender.published_at, updated_at=tender.published_at)
    return Incoming(bidder.actor, upload, checked)


def test_accept_many_takes_each_envelope_in_order_and_returns_an_envelope_s_own_refusal(kit):
    tender = kit.tender()
    lot = lot_of(tender)
    bidders = [kit.bidder() for _ in range(3)]
    wrong = kit.seal(tender, lot, bidders[1], version=2)  # sealed for a version 2 it does not have
    items = [_checked(kit, tender, lot, bidders[0], kit.seal(tender, lot, bidders[0])),
             _checked(kit, tender, lot, bidders[1], wrong),
             _checked(kit, tender, lot, bidders[2], kit.seal(tender, lot, bidders[2]))]
    db.session.commit()
    events_before = db.session.scalar(select(func.count()).select_from(AuditEvent))
    results = accept_many(lock_tender(tender.id), items)
    db.session.commit()
    assert isinstance(results[0], AcceptedBid) and isinstance(results[2], AcceptedBid)
    assert isinstance(results[1], DomainError) and results[1].code == "wrong_version"
    first, third = results[0].bid, results[2].bid
    assert first.log_index < third.log_index and first.received_at == third.received_at
    assert db.session.scalar(select(func.count()).select_from(Bid)) == 2
    events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq).offset(events_before)).all()
    assert [e.action for e in events] == ["bid.submit", "bid.submit"]
    assert [e.organisation_id for e in events] == [bidders[0].org.id, bidders[2].org.id]
    assert verify_chain().broken is None
    indexes = db.session.scalars(select(LogEntry.index).where(LogEntry.tender_id == tender.id)
                                 .order_by(LogEntry.index)).all()
    assert indexes == list(range(len(indexes)))  # contiguous
    assert verify_tender(db.session.get(Tender, tender.id)).ok


@pytest.mark.postgres
def test_envelopes_waiting_for_the_lock_are_accepted_together(kit, monkeypatch):
    tender = kit.tender(mode="bidder", custodians=0)
    lot = lot_of(tender)
    bidders = [kit.bidder() for _ in range(12)]
    twice = bidders[0]
    jobs = [(b, kit.seal(tender, lot, b)) for b in bidders]
    jobs.append((twice, kit.seal(tender, lot, twice, version=2, plaintext=b"second" * 40)))
    db.session.commit()
    db.session.close()
    real_lock, slowed = sealed_group.lock_tender_and_log, threading.Event()

    def slow_first_lock(tender_id):  # the first leader holds the lock a while: the others queue up behind it
        if not slowed.is_set():
            slowed.set()
            time.sleep(0.5)
        return real_lock(tender_id)

    monkeypatch.setattr(sealed_group, "lock_tender_and_log", slow_first_lock)
    seen_before = len(sealed_group.groups_seen())
    responses: list = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def run(i, bidder, envelope):
        barrier.wait(timeout=30)
        if i == len(jobs) - 1:
            time.sleep(0.2)  # the second envelope of the first bidder comes after its first
        responses[i] = whole(bidder.client, tender, lot, envelope)

    threads = [threading.Thread(target=run, args=(i, b, e)) for i, (b, e) in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert [r.status_code for r in responses] == [201] * len(jobs), [r.get_json() for r in responses]
    groups = sealed_group.groups_seen()[seen_before:]
    assert sum(groups) == len(jobs) and max(groups) > 1, groups
    for (bidder, envelope), response in zip(jobs, responses, strict=True):
        check_receipt(bidder.client, response.get_json(), envelope)
    db.session.expire_all()
    versions = db.session.execute(select(Bid.version, Bid.is_current).where(Bid.organisation_id == twice.org.id)
                                  .order_by(Bid.version)).all()
    assert versions == [(1, False), (2, True)]  # the replacement came in a later group
    assert db.session.scalar(select(func.count()).select_from(Bid).where(Bid.is_current.is_(True))) == 12
    assert verify_chain().broken is None and verify_tender(db.session.get(Tender, tender.id)).ok


@pytest.mark.postgres
def test_a_lock_that_waited_reads_the_log_as_the_previous_holder_left_it(app, kit):
    """Across processes the groups meet at the tender lock: the next one must see the log grown."""
    tender = kit.tender(mode="bidder", custodians=0)
    tender_id = tender.id
    db.session.commit()
    db.session.close()
    locked, sizes = threading.Event(), {}

    def first():
        with app.app_context():
            t, _log = lock_tender_and_log(tender_id)
            translog.append_event(t, "key-event", event="padding", key_id="00" * 32, at_ms=1)
            db.session.flush()
            sizes["first"] = db.session.get(TenderLog, tender_id).size
            locked.set()
            time.sleep(0.5)  # the second one waits for the lock meanwhile
            db.session.commit()

    def second():
        locked.wait(timeout=10)
        with app.app_context():
            _t, log = lock_tender_and_log(tender_id)
            sizes["second"] = log.size
            db.session.rollback()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sizes["second"] == sizes["first"]


def test_an_idle_tender_keeps_no_queue(kit):
    tender = kit.tender()
    lot, bidder = lot_of(tender), kit.bidder()
    assert whole(bidder.client, tender, lot, kit.seal(tender, lot, bidder)).status_code == 201
    assert not [key for key in sealed_group._queues if key[1] == tender.id]
