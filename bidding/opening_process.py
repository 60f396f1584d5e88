"""The decrypting step of the opening: crash-safe, idempotent, one bid per transaction.

A bid whose content key was accepted waits with ``status = pending`` and a ``pending_key``. Each run
claims one such row (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers never take the same
bid; SQLite serialises writers), decrypts the envelope in bounded memory into a temporary file, checks
the bidder's signature and the envelope's context, stores the plaintext ZIP content-addressed, reads
``bid.json`` (:mod:`bidding.bid_document`) and commits the row as decrypted (clearing the key) before
taking the next. A worker killed between two bids leaves every committed bid decrypted once and the
others queued: the next run (the periodic task or the next request) completes them. A content-addressed
store makes a repeated store of the same plaintext harmless.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from cryptography import x509
from sqlalchemy import select

from bidding import hall_events
from bidding.bid_document import BidFormatError, read_bid
from bidding.models import Tender, TenderStatus
from bidding.opening import announce, board_row, ensure_session, get_session, phase_payload
from bidding.opening_decrypt import close_window, mark_failed
from bidding.opening_models import BidOpening, BidOpeningStatus, OpeningPhase, OpeningSession
from bidding.sealed_checks import lock_tender
from bidding.sealed_models import Bid
from core import audit
from core.actor import Actor
from core.clock import as_utc, now
from core.db import db, locked_scalars
from core.i18n import N_
from core.storage import default_store
from crypto import envelope as E
from crypto.errors import CryptoError

log = logging.getLogger(__name__)


def _claim(tender_id: int) -> BidOpening | None:
    """Lock the next queued bid of the tender for this transaction, skipping bids other workers hold."""
    stmt = (select(BidOpening).where(BidOpening.tender_id == tender_id, BidOpening.status == BidOpeningStatus.PENDING,
                                     BidOpening.pending_key.is_not(None))
            .order_by(BidOpening.id).limit(1))
    return locked_scalars(stmt, BidOpening, BidOpening.tender_id == tender_id, skip_locked=True).first()


class _HashingWriter:
    """A file writer that hashes and counts what passes through (the plaintext is read once)."""

    def __init__(self, raw: Any) -> None:
        self.raw, self.digest, self.size = raw, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        view = memoryview(data).cast("B")
        self.digest.update(view)
        self.size += view.nbytes
        while view.nbytes:  # write it all here, so that nothing is hashed twice
            view = view[self.raw.write(view):]
        return len(data)

    def flush(self) -> None:
        self.raw.flush()


def form_of(offer: Any, documents: Any) -> dict[str, Any]:
    """The opening-form data (开标一览表) kept for the record: exactly what bid.json says."""
    return {"lot": offer.lot, "price": f"{offer.price:.2f}", "currency": "CNY", "duration_days": offer.duration_days,
            "quality": offer.quality, "alternatives": offer.alternatives,
            "project_manager": {"name": offer.manager_name, "certificate_no": offer.manager_certificate_no},
            "documents": [{"name": d.name, "size": d.size, "sha256": d.sha256} for d in documents]}


def decrypt_one(row: BidOpening) -> None:
    """Decrypt, verify and store one claimed bid; mark it decrypted (or failed when the envelope is damaged)."""
    bid: Bid = row.bid
    tender: Tender = bid.tender
    store = default_store()
    signer = x509.load_pem_x509_certificate(bid.signer_certificate.pem.encode()).public_key()
    context = E.bid_context(tender.code, bid.lot.code, bid.organisation.uscc, bid.version)
    store.root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=store.root, prefix=".opening-")
    method = row.pending_method
    try:
        with os.fdopen(fd, "wb") as raw, store.open(bid.envelope_sha256) as src:
            out = _HashingWriter(raw)
            E.open_stream(src, out, signer_public_key=signer, content_key=bytes(row.pending_key),
                          expected_context=context)
        sha, size = out.digest.hexdigest(), out.size
        store.adopt_file(tmp, sha)  # hashed while decrypting: moved into place, not copied
    except CryptoError as exc:
        mark_failed(row, f"the envelope does not open with the accepted key: {exc}")
        audit.record(Actor.system("opening"), "opening.decrypt_failed", "bid", bid.id, {"reason": str(exc)})
        return
    finally:
        Path(tmp).unlink(missing_ok=True)
    try:
        parsed = read_bid(store.path_for(sha), sha256=sha)
        form, problem = form_of(parsed.offer, parsed.documents), None
        if parsed.offer.lot != bid.lot.code:
            problem = f"bid.json names lot {parsed.offer.lot}, the bid was sealed for lot {bid.lot.code}"
    except BidFormatError as exc:
        form, problem = None, str(exc.message)
    row.status, row.method, row.decrypted_at = BidOpeningStatus.DECRYPTED, method, now()
    row.pending_key = row.pending_method = None
    row.plaintext_sha256, row.plaintext_size = sha, size
    row.form = form if problem is None else {**(form or {}), "problem": problem}
    row.error = problem
    db.session.flush()
    audit.record(Actor.system("opening"), "opening.decrypted", "bid", bid.id, {
        "tender_id": tender.id, "method": method.value if method else None, "plaintext_sha256": sha, "size": size,
        "problem": problem})
    announce(tender.id, "decrypted", N_("The bid of %(bidder)s for lot %(lot)s is decrypted."),
             bidder=row.organisation.name, lot=bid.lot.code)
    hall_events.emit(tender.id, "hall.board", board_row(row))


def _locked_session(tender_id: int) -> OpeningSession | None:
    """The tender's opening session, re-read under a write lock held to the end of this transaction.

    Two workers finishing the last bids at once would otherwise both move the phase on (and the second
    would fail on the row's version): the lock makes the second wait and then see the phase already moved.
    """
    return locked_scalars(select(OpeningSession).where(OpeningSession.tender_id == tender_id), OpeningSession,
                          OpeningSession.tender_id == tender_id).first()


def _finish_if_done(tender_id: int) -> None:
    session = _locked_session(tender_id)
    if session is None or session.phase != OpeningPhase.DECRYPTING:
        return
    pending = db.session.scalar(select(BidOpening.id).where(BidOpening.tender_id == tender_id,
                                                            BidOpening.status == BidOpeningStatus.PENDING).limit(1))
    if pending is not None:
        return
    session.phase, session.decrypted_at = OpeningPhase.DECRYPTED, now()
    db.session.flush()
    audit.record(Actor.system("opening"), "opening.phase", "tender", tender_id, {"phase": ["decrypting", "decrypted"]})
    announce(tender_id, "phase", N_("Every bid is decrypted or failed: decryption is over."))
    hall_events.emit(tender_id, "hall.phase", phase_payload(session))


def process_pending(tender_id: int) -> int:
    """Decrypt every queued bid of the tender, committing each; return how many this run completed."""
    done = 0
    while True:
        db.session.commit()  # the claim must open its own transaction; nothing half-done is carried over
        row = _claim(tender_id)
        if row is None:
            break
        decrypt_one(row)
        db.session.commit()
        done += 1
    _finish_if_done(tender_id)
    db.session.commit()
    return done


def _active_tender_ids() -> list[int]:
    need_session = select(Tender.id).outerjoin(OpeningSession, OpeningSession.tender_id == Tender.id).where(
        Tender.status == TenderStatus.OPENING, OpeningSession.tender_id.is_(None))
    running = select(OpeningSession.tender_id).where(OpeningSession.phase == OpeningPhase.DECRYPTING)
    return sorted(set(db.session.scalars(need_session)) | set(db.session.scalars(running)))


def advance(actor: Actor, tender_id: int) -> int:
    """One tender: create its session, end its window when due, decrypt what is queued; return bids decrypted."""
    db.session.commit()
    if get_session(tender_id) is None:
        db.session.commit()  # the lock below must open a fresh transaction (SQLite: no write after a read)
        # the tender's row lock first: a second worker (or a second beat) waits here, then finds the session
        ensure_session(lock_tender(tender_id))
        db.session.commit()
    session = get_session(tender_id)
    if session.tender.hold_reason is not None:
        return 0  # a supervisor's hold: nothing moves (the window is extended by the hold when it is lifted)
    if session.phase == OpeningPhase.DECRYPTING and session.window_closed_at is None \
            and session.decryption_deadline is not None and now() >= as_utc(session.decryption_deadline):
        close_window(actor, tender_id)
        db.session.commit()
    return process_pending(tender_id)


def advance_all(actor: Actor) -> dict[int, int]:
    """Every tender at its opening: advance it (each in its own transactions); failures are retried next run."""
    results: dict[int, int] = {}
    for tender_id in _active_tender_ids():
        try:
            results[tender_id] = advance(actor, tender_id)
        except Exception:
            db.session.rollback()
            log.exception("advancing the opening of tender %s failed; the next run retries", tender_id)
    return results
