"""Bids in one request racing the deadline on PostgreSQL: 30 requests in parallel threads through the real app.

As for the resumable path (test_sealed_race): the platform clock runs well before the deadline and jumps to
the deadline instant when the fifteenth bid is committed, wherever the other threads are (before the body
is read, between the two transactions, waiting for the tender lock). Every bid accepted before the deadline
has a receipt and is in the final log, none is accepted at or after it, no upload is left in between,
nothing is left in the spool, and no bidder has two current bids.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from bidding.models import Tender
from bidding.receipts import epoch_ms
from bidding.sealed_models import Bid, BidUpload, UploadStatus
from bidding.sealed_spool import spool_dir
from bidding.sealed_verify import verify_tender
from bidding.tasks import close_due_tenders
from core.audit_verify import verify_chain
from core.clock import clock
from core.db import db
from crypto import merkle
from crypto.receipt import verify_tree_head
from tests.bidding.sealed_support import (  # noqa: F401  (kit_fixture is the kit fixture)
    check_receipt,
    kit_fixture,
    lot_of,
    submit,
    transparency_keys,
)
from tests.bidding.test_sealed_single import whole

CUT_AFTER = 15
ALLOWED_REFUSALS = {"deadline_passed", "upload_withdrawn", "upload_data_gone", "wrong_version"}


def _moving_clock_at(at: datetime) -> None:
    """The platform clock shows ``at`` now and runs on with real time."""
    clock.reset()
    clock.travel(at - datetime.now(UTC))


@pytest.mark.postgres
def test_single_request_bids_racing_the_deadline(kit, api_as):
    tender = kit.tender(mode="bidder", custodians=0)
    lot = lot_of(tender)
    fresh = [kit.bidder() for _ in range(20)]
    replacing = [kit.bidder() for _ in range(5)]
    for b in replacing:
        assert submit(b.client, tender, lot, kit.seal(tender, lot, b)).status_code == 201
    jobs = []  # (client, None, envelope, bidder)
    for b in fresh:
        jobs.append((b.client, None, kit.seal(tender, lot, b), b))
    for b in replacing:
        for n in range(2):
            client = b.client if n == 0 else api_as(b.person)
            envelope = kit.seal(tender, lot, b, version=2, plaintext=f"replacement {n}".encode() * 30)
            jobs.append((client, None, envelope, b))
    deadline = tender.bid_deadline_at
    before = set(db.session.scalars(select(Bid.public_id)))
    db.session.commit()
    db.session.close()

    accepted = {"n": 0}
    guard = threading.Lock()

    def mark(session, flush_context):
        n = sum(isinstance(o, Bid) for o in session.new)
        if n:
            session.info["race_bids"] = session.info.get("race_bids", 0) + n

    def cut(session):  # one commit may accept a group of bids (bidding.sealed_group)
        n = session.info.pop("race_bids", 0)
        if n:
            with guard:
                before, accepted["n"] = accepted["n"], accepted["n"] + n
                if before < CUT_AFTER <= accepted["n"]:  # the deadline instant arrives; the clock keeps moving
                    _moving_clock_at(deadline)

    _moving_clock_at(deadline - timedelta(hours=1))
    barrier = threading.Barrier(len(jobs))
    responses: list = [None] * len(jobs)

    def run(i, client, envelope):
        barrier.wait(timeout=30)
        responses[i] = whole(client, tender, lot, envelope)

    event.listen(Session, "after_flush", mark)
    event.listen(Session, "after_commit", cut)
    try:
        threads = [threading.Thread(target=run, args=(i, c, e)) for i, (c, _u, e, _b) in enumerate(jobs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        event.remove(Session, "after_flush", mark)
        event.remove(Session, "after_commit", cut)

    codes = [r.status_code for r in responses]
    assert set(codes) <= {201, 422}, [r.get_json() for r in responses if r.status_code not in (201, 422)]
    refused = [r.get_json()["code"] for r in responses if r.status_code == 422]
    assert set(refused) <= ALLOWED_REFUSALS, refused
    won = [(job, r.get_json()) for job, r in zip(jobs, responses, strict=True) if r.status_code == 201]
    assert CUT_AFTER <= len(won) < len(jobs), "the deadline must fall inside the race"
    deadline_ms = epoch_ms(deadline)
    for (client, _u, envelope, _b), data in won:
        receipt = check_receipt(client, data, envelope)
        assert receipt.received_at_ms < deadline_ms

    db.session.expire_all()
    race_bids = set(db.session.scalars(select(Bid.public_id))) - before
    assert race_bids == {d["bid"]["id"] for _j, d in won}  # none lost, none extra
    assert all(b.received_at < deadline for b in db.session.scalars(select(Bid)))
    states = db.session.execute(select(BidUpload.status, func.count()).group_by(BidUpload.status)).all()
    assert not {s for s, _n in states} & {UploadStatus.OPEN, UploadStatus.FINALIZING}
    assert not (spool_dir().exists() and any(spool_dir().iterdir()))
    doubles = db.session.execute(select(Bid.organisation_id).where(Bid.is_current.is_(True))
                                 .group_by(Bid.organisation_id).having(func.count() > 1)).all()
    assert doubles == []
    for b in replacing:  # each raced two replacements: at most one of them won
        versions = db.session.scalars(select(Bid.version).where(Bid.organisation_id == b.org.id)).all()
        assert sorted(versions) in ([1], [1, 2])

    # the scheduler comes late: closing fixes exactly the accepted set under a final head
    close_due_tenders()
    db.session.expire_all()
    stored = db.session.get(Tender, tender.id)
    assert stored.status.value == "opening"
    public = kit.api_as(kit.create_person())
    final = verify_tree_head(public.get(f"/api/tenders/{tender.id}/log/head").get_json()["final"],
                             transparency_keys(public)["log"])
    for (_c, _u, _e, _b), data in won:
        index = data["bid"]["log_index"]
        proof = public.get(f"/api/tenders/{tender.id}/log/inclusion?index={index}&size={final.tree_size}").get_json()
        merkle.verify_inclusion(bytes.fromhex(proof["leaf_hash"]), index, final.tree_size,
                                [bytes.fromhex(h) for h in proof["proof"]], final.root_hash)
    current = db.session.scalar(select(func.count()).select_from(Bid).where(Bid.is_current.is_(True)))
    fresh_orgs = {b.org.id for b in fresh}
    assert current == len(replacing) + sum(1 for (_c, _u, _e, b), _d in won if b.org.id in fresh_orgs)
    assert verify_tender(stored).ok, verify_tender(stored).problems
    assert verify_chain().ok
