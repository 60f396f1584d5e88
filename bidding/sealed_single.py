"""Submission in one request (一次递交): an envelope that fits one request, sent whole with its SHA-256.

The resumable path (:mod:`bidding.submissions`) costs a bidder three requests and five transactions.
An envelope of at most ``MAX_CHUNK`` bytes can instead be sent whole with its declared SHA-256; the
server runs the same checks, writes the same log entry, receipt and ``bid.submit`` audit record, and
keeps the same deadline rules, in one transaction:

1. :func:`precheck`, before any byte of the body is read: bidder, lot, status and clock, size, hash;
2. :func:`bidding.sealed_checks.check_whole`, no lock and no row, in one pass as the body arrives (in
   pieces of at most 1 MiB, written to a file beside the store: memory stays bounded): the envelope's
   structure, context, recipients, signature and hash; the file is then fsynced and renamed into the
   content-addressed store;
3. one transaction under the tender lock: status *and* clock, the upload row (finalized), the bid, the log
   entry, the receipt and the audit record (:func:`bidding.submissions.accept_many`), shared with the
   other envelopes waiting for the same tender in this process (:mod:`bidding.sealed_group`).

A crash anywhere leaves no row (at most an unreferenced envelope in the content-addressed store, or an
incoming file beside it). A
refused envelope is recorded as a failed upload with its reason and a ``bid.upload.refused`` audit
record (``bid.upload.withdrawn`` when the deadline passed meanwhile), and nothing is kept of its bytes.
"""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from bidding import sealed_spool as spool
from bidding.errors import DeadlinePassed
from bidding.models import Lot, Tender
from bidding.sealed_bundle import bundle
from bidding.sealed_checks import check_whole
from bidding.sealed_group import accept_in_group
from bidding.sealed_models import Bid, BidUpload, UploadStatus
from bidding.submissions import Incoming, Submitted, check_new_upload, refusal_summary
from core import audit
from core.actor import Actor
from core.clock import now
from core.db import commit_keeping_loaded, db
from core.errors import DomainError

__all__ = ["precheck", "submit_whole"]


def precheck(actor: Actor, tender: Tender, lot: Lot, *, size: int, sha256: str) -> str:
    """The refusals that need no byte of the envelope (bidder, lot, deadline, size, hash format).

    Returns the SHA-256 normalised.
    """
    return check_new_upload(actor, tender, lot, size=size, sha256=sha256, check_log=False)


def _upload(actor: Actor, tender_id: int, lot_id: int, *, size: int, sha256: str, status: UploadStatus,
            add: bool = True) -> BidUpload:
    at = now()
    upload = BidUpload(id=secrets.token_hex(16), tender_id=tender_id, lot_id=lot_id,
                       organisation_id=actor.organisation_id, person_id=actor.person_id, declared_size=size,
                       declared_sha256=sha256, received_bytes=size, status=status, created_at=at, updated_at=at)
    if add:
        db.session.add(upload)
    return upload


def submit_whole(actor: Actor, tender: Tender, lot: Lot, *, sha256: str, incoming: spool.Incoming,
                 size: int) -> Submitted:
    """Check, store and accept a whole envelope (this commits); return the receipt bundle.

    ``incoming``: the body of ``size`` bytes as it arrives; written and verified in one pass, moved
    into the store once it verifies, and removed in every other case. ``tender`` and ``lot`` as the
    precheck read them: the tender is read again under its lock.
    """
    tender_id, lot_id, lot_code = tender.id, lot.id, lot.code
    try:
        checked = check_whole(actor, tender, lot, incoming, size, sha256)
        commit_keeping_loaded()  # the tender lock must come first in the next transaction
        upload = _upload(actor, tender_id, lot_id, size=size, sha256=sha256, status=UploadStatus.FINALIZING,
                         add=False)  # added with its bid (one INSERT)
        outcome, own = accept_in_group(tender_id, Incoming(actor, upload, checked))
    except DomainError as exc:
        db.session.rollback()
        _record_refusal(actor, tender_id, lot_id, lot_code, size=size, sha256=sha256, error=exc)
        db.session.commit()
        raise
    finally:
        incoming.drop()  # nothing once it is in the store
    if own is not None:  # accepted by this thread: answer from the objects just written
        return bundle(own.bid, own.commitment, own.entry, own.previous_head_size,
                      frontier_before=own.frontier_before)
    bid = db.session.scalar(select(Bid).where(Bid.public_id == outcome.bid_public_id)
                            .options(joinedload(Bid.tender), joinedload(Bid.lot), joinedload(Bid.organisation)))
    return bundle(bid, checked.commitment, outcome.entry, outcome.previous_head_size, frontier_before=outcome.frontier_before)


def _record_refusal(actor: Actor, tender_id: int, lot_id: int, lot_code: str, *, size: int, sha256: str,
                    error: DomainError) -> None:
    """A refused whole envelope: the failed upload (withdrawn when the deadline passed) and why, audited."""
    late = isinstance(error, DeadlinePassed)
    upload = _upload(actor, tender_id, lot_id, size=size, sha256=sha256,
                     status=UploadStatus.WITHDRAWN if late else UploadStatus.FAILED)
    code, message = refusal_summary(error)
    upload.failure_code, upload.failure_message, upload.finished_at = code, message, upload.created_at
    db.session.flush()
    summary = {"upload": upload.id, "lot": lot_code, "size": size, "sha256": sha256, "code": code, "reason": message}
    if actor.device:
        summary["device"] = actor.device
    audit.record(actor, "bid.upload.withdrawn" if late else "bid.upload.refused", "tender", tender_id, summary)
