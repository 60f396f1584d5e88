"""Crash safety and races of the opening: a worker killed between two bids; two hosts starting at once."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from bidding import opening, opening_decrypt, opening_process
from bidding.opening_models import BidOpeningStatus, OpeningPhase
from core.audit import AuditEvent
from core.db import db
from tests.bidding.opening_support import make_opening_fixture  # noqa: F401
from tests.bidding.sealed_support import kit_fixture  # noqa: F401


class Killed(Exception):
    pass


def _queue_all(o):
    opening.start_decryption(o.host_actor, o.tender.id)
    db.session.commit()
    for b in o.bidders:
        opening_decrypt.submit_content_key(b.actor, o.tender.id, o.bid_of(b).public_id, o.content_key(b))
        db.session.commit()


def _outcome(o):
    db.session.expire_all()
    rows = {b.org.uscc: o.row_of(b) for b in o.bidders}
    decrypted = [a for a in db.session.scalars(select(AuditEvent.action)) if a == "opening.decrypted"]
    return ({k: (r.status.value, r.plaintext_sha256, r.form) for k, r in rows.items()}, len(decrypted),
            opening.get_session(o.tender.id).phase)


def test_worker_killed_between_two_bids_completes_exactly_once(make_opening, monkeypatch):
    o = make_opening(4, mode="bidder", custodians=0)
    _queue_all(o)
    real, calls = opening_process.decrypt_one, []

    def dies_on_second(row):
        calls.append(row.id)
        if len(calls) == 2:
            raise Killed("worker killed")
        real(row)
    monkeypatch.setattr(opening_process, "decrypt_one", dies_on_second)
    with pytest.raises(Killed):
        opening_process.process_pending(o.tender.id)
    db.session.rollback()
    done = [o.row_of(b).status for b in o.bidders]
    assert done.count(BidOpeningStatus.DECRYPTED) == 1  # the first bid's commit survived the kill
    monkeypatch.setattr(opening_process, "decrypt_one", real)
    assert opening_process.process_pending(o.tender.id) == 3  # the restart does the other three
    assert opening_process.process_pending(o.tender.id) == 0  # and nothing twice
    statuses, decrypted_events, phase = _outcome(o)
    assert decrypted_events == 4 and phase == OpeningPhase.DECRYPTED
    assert {s for s, _h, _f in statuses.values()} == {"decrypted"}
    # an uninterrupted run over the same bids gives the same plaintexts and forms
    uninterrupted = {b.org.uscc: (o.prices[b.org.id]) for b in o.bidders}
    assert {k: f["price"] for k, (_s, _h, f) in statuses.items()} == uninterrupted
    from core.storage import default_store
    assert all(default_store().verify(h) for _s, h, _f in statuses.values())


def test_uninterrupted_and_interrupted_runs_store_identical_results(make_opening, monkeypatch):
    o = make_opening(3, mode="bidder", custodians=0)
    _queue_all(o)
    assert opening_process.process_pending(o.tender.id) == 3
    first, count, _ = _outcome(o)
    assert count == 3
    # replay: rows are decrypted, so a second worker finds nothing to claim
    assert opening_process.advance_all(o.host_actor) == {}
    assert _outcome(o)[0] == first


def _at_once(app, work, n: int = 2) -> list:
    """Run ``work`` in ``n`` threads released together, each in its own app context and database session;
    return what each returned or raised (a raise rolls its session back)."""
    barrier, outcomes = threading.Barrier(n), []

    def run():
        with app.app_context():
            try:
                barrier.wait()
                outcomes.append(work())
            except Exception as exc:  # noqa: BLE001 - the caller asserts on it
                db.session.rollback()
                outcomes.append(exc)
            finally:
                db.session.remove()
    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


@pytest.mark.postgres
def test_two_hosts_pressing_start_at_once_open_once(make_opening, app):
    o = make_opening(3, mode="bidder", custodians=0)
    tender_id, actor = o.tender.id, o.host_actor

    def press():
        opening.start_decryption(actor, tender_id)
        db.session.commit()
        return "started"
    results = [r if isinstance(r, str) else getattr(r, "code", type(r).__name__) for r in _at_once(app, press)]
    assert sorted(results) == ["already_started", "started"]
    db.session.expire_all()
    starts = db.session.scalars(select(AuditEvent.action).where(AuditEvent.action == "opening.start")).all()
    assert len(starts) == 1


@pytest.mark.postgres
def test_two_workers_decrypt_each_bid_once(make_opening, app):
    o = make_opening(4, mode="bidder", custodians=0)
    _queue_all(o)
    tender_id = o.tender.id
    done = _at_once(app, lambda: opening_process.process_pending(tender_id))
    assert all(isinstance(d, int) for d in done), done
    assert sum(done) == 4
    assert _outcome(o)[1] == 4


def test_two_beats_at_the_deadline_make_one_opening(kit, tmp_path, frozen, app):
    """Two beat processes (or workers) advance the same due tender at once: one session, one row per bid."""
    from bidding.opening_models import BidOpening, OpeningSession
    from bidding.tasks import close_due_tenders
    from core.actor import Actor
    from tests.bidding.opening_support import bid_zip
    from tests.bidding.sealed_support import lot_of, past_deadline, submit

    tender = kit.tender(mode="bidder", custodians=0)
    lot = lot_of(tender)
    for i in range(3):
        b = kit.bidder()
        sealed = kit.seal(tender, lot, b, plaintext=bid_zip(tmp_path, lot.code, f"{900000 + i}.00", f"t{i}"))
        assert submit(b.client, tender, lot, sealed).status_code == 201
    past_deadline(tender, frozen)
    close_due_tenders()
    db.session.commit()
    tender_id = tender.id
    assert opening.get_session(tender_id) is None
    results = _at_once(app, lambda: opening_process.advance_all(Actor.system("opening")))
    assert results == [{tender_id: 0}, {tender_id: 0}]
    db.session.expire_all()
    assert len(db.session.scalars(select(OpeningSession).where(OpeningSession.tender_id == tender_id)).all()) == 1
    assert len(db.session.scalars(select(BidOpening).where(BidOpening.tender_id == tender_id)).all()) == 3
