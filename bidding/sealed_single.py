"""Submission in one request (一次递交): create, data and finalize of an envelope that fits one request.

The resumable path (:mod:`bidding.submissions`) costs a bidder three requests and five transactions.
An envelope of at most ``MAX_CHUNK`` bytes can instead be sent whole with its declared SHA-256; the
server then runs the same checks, writes the same audit records, log entry and receipt, and keeps the
same deadline rules, in two transactions:

1. :func:`receive_whole`, no lock held: the checks of a new upload (bidder, lot, status and clock,
   size, unfinished uploads), the envelope's structure, context, recipients, signature and hash, then
   the envelope written once into the content-addressed store (fsynced) and the upload row, already
   frozen (``finalizing``), with its ``bid.upload.start`` audit record;
2. :func:`bidding.submissions.settle`: the tender lock, status *and* clock, the bid, the log entry,
   the receipt (as for the resumable path).

A refused envelope is recorded as for the resumable path (the upload ``failed`` with its reason,
``bid.upload.start`` then ``bid.upload.refused``), and nothing is kept of its bytes. A crash after step
1 leaves a ``finalizing`` upload whose envelope is stored: ``POST /api/uploads/{id}/finalize`` completes
it, and at the deadline it counts as withdrawn like any unfinished upload. A crash during step 1 leaves
no row (at most an unreferenced blob in the content-addressed store).
"""

from __future__ import annotations

from bidding.models import Lot, Tender
from bidding.sealed_checks import CheckedEnvelope, check_envelope
from bidding.sealed_models import BidUpload, TenderLog, UploadStatus
from bidding.submissions import Submitted, abandon, check_new_upload, open_upload, record_start, settle
from core.actor import Actor
from core.db import db
from core.errors import DomainError

__all__ = ["precheck", "receive_whole", "submit_whole"]


def precheck(actor: Actor, tender: Tender, lot: Lot, *, size: int, sha256: str) -> None:
    """The refusals that need no byte of the envelope (bidder, lot, deadline, size, hash format)."""
    check_new_upload(actor, tender, lot, size=size, sha256=sha256)


def receive_whole(actor: Actor, tender: Tender, lot: Lot, *, sha256: str, data: bytes) -> tuple[BidUpload,
                                                                                                CheckedEnvelope]:
    """Step 1 (flushes, does not commit): the checked envelope stored and its frozen upload.

    A refusal of the envelope itself is recorded on the upload (failed, with its audit records) in this
    transaction before it is raised: the caller commits that record, as the resumable finalize does.
    """
    upload = open_upload(actor, tender, lot, size=len(data), sha256=sha256, status=UploadStatus.FINALIZING)
    try:
        checked = check_envelope(actor, upload, data)
    except DomainError as exc:
        record_start(actor, upload, lot)
        abandon(actor, upload.id, exc)
        raise
    record_start(actor, upload, lot)  # last: the audit chain's head stays locked until the commit
    return upload, checked


def submit_whole(actor: Actor, tender: Tender, lot: Lot, *, sha256: str, data: bytes) -> tuple[Submitted, bool]:
    """Both steps (this commits twice); return the receipt bundle as finalize does."""
    try:
        upload, checked = receive_whole(actor, tender, lot, sha256=sha256, data=data)
    except DomainError:
        db.session.commit()  # keeps a refused envelope's upload and audit records (nothing else was written)
        raise
    db.session.commit()  # step 2 takes the tender lock first, in a fresh transaction
    for row in list(db.session.identity_map.values()):  # the log row is read again under the lock, never reused
        if isinstance(row, TenderLog):
            db.session.expire(row)
    return settle(actor, upload, checked)

