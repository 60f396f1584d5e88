"""Sealed-bid submission (投标文件递交): resumable uploads, finalize with a signed receipt, replace, withdraw.

The server only ever receives ciphertext. An upload declares the envelope's size and SHA-256, receives
chunks at increasing offsets (a resent identical chunk is accepted once), and is finalized in three
steps, each its own transaction so that no lock is held while a large file is read:

1. :func:`begin_finalize` checks the bytes are complete and freezes the upload (no more chunks);
2. :func:`bidding.sealed_checks.check_envelope` verifies size, hash, structure, signature (by a valid
   certificate of the bidder's organisation or of the acting person), context and recipients, then
   moves the file into the content-addressed store, fsynced;
3. :func:`complete` locks the tender row, checks status *and* clock (``now()`` under the lock is the
   receipt's time), makes the bid version current (the previous one is replaced), appends the log
   entry, signs the tree head and the receipt.

Deadline (20号令 §27): nothing is accepted at or after ``bid_deadline_at``, whatever the tender's
status says (a late scheduler cannot admit a late bid); an upload not finalized by then counts as
withdrawn. Confidentiality: nothing here tells a bidder whether other bidders exist.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, NoReturn

from blinker import Namespace
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from bidding import sealed_spool as spool
from bidding import translog
from bidding.errors import DeadlinePassed, InvalidInput
from bidding.models import Lot, Tender
from bidding.policy import require_bidder
from bidding.receipts import epoch_ms, issue_receipt
from bidding.sealed_bundle import Submitted, bundle, submitted
from bidding.sealed_checks import (
    CheckedEnvelope,
    check_envelope,
    lock_tender,
    lock_upload,
    max_bid_bytes,
    refused,
    require_open_for_bids,
)
from bidding.sealed_errors import (
    NoBid,
    OffsetMismatch,
    UploadClosed,
    UploadIncomplete,
    UploadNotFound,
    UploadTooLarge,
)
from bidding.sealed_models import Bid, BidderCommitment, BidUpload, TenderLog, UploadStatus
from bidding.sealed_rules import chunk_plan, context_refusal, expected_context
from core import audit
from core.actor import Actor
from core.clock import now
from core.db import after_commit, db
from core.errors import DomainError
from crypto.receipt import log_entry

# Signal for the layers above: a bid withdrawn before the deadline frees its bond (条例 §35). Sent with the
# Bid as sender after the change is flushed, inside the same transaction: ``bid_withdrawn.send(bid, actor=,
# at=)``.
_signals = Namespace()
bid_withdrawn = _signals.signal("bid-withdrawn")

MAX_CHUNK = 32 << 20
MAX_OPEN_UPLOADS = 5  # per bidder and lot
ACTIVE = (UploadStatus.OPEN, UploadStatus.FINALIZING)


# --- uploads -------------------------------------------------------------------------------------

def check_new_upload(actor: Actor, tender: Tender, lot: Lot, *, size: int, sha256: str,
                     check_log: bool = True) -> str:
    """The refusals of a new upload (before any byte is taken); return the SHA-256 normalised.

    ``check_log=False``: the deadline by status and clock only (see :func:`require_open_for_bids`).
    """
    require_bidder(actor, tender)
    if lot.tender_id != tender.id:
        raise InvalidInput(_l("Lot %(lot)s is not a lot of tender %(tender)s."), code="wrong_lot",
                           fields={"lot_id": [_l("Not a lot of this tender.")]}, lot=lot.id, tender=tender.code)
    require_open_for_bids(tender, now(), check_log=check_log)
    limit = max_bid_bytes(lot)
    if size > limit:
        raise UploadTooLarge(_l("The envelope has %(size)s bytes; lot %(lot)s accepts at most %(limit)s bytes."),
                             fields={"size": [_l("Too large.")]}, size=size, lot=lot.code, limit=limit)
    sha256 = (sha256 or "").strip().lower()
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise InvalidInput(fields={"sha256": [_l("Give the envelope's SHA-256 as 64 hexadecimal digits.")]})
    return sha256


def open_upload(actor: Actor, tender: Tender, lot: Lot, *, size: int, sha256: str,
                status: UploadStatus = UploadStatus.OPEN) -> BidUpload:
    """The checks of :func:`check_new_upload` and the unfinished-upload limit, then the flushed row (no audit)."""
    sha256 = check_new_upload(actor, tender, lot, size=size, sha256=sha256)
    active = db.session.scalar(select(func.count()).select_from(BidUpload).where(
        BidUpload.lot_id == lot.id, BidUpload.organisation_id == actor.organisation_id,
        BidUpload.status.in_(ACTIVE)))
    if active >= MAX_OPEN_UPLOADS:
        raise UploadClosed(_l("Your organisation already has %(n)s unfinished uploads for this lot; finish or "
                              "cancel one first."), code="too_many_uploads", n=active)
    upload = BidUpload(id=secrets.token_hex(16), tender_id=tender.id, lot_id=lot.id,
                       organisation_id=actor.organisation_id, person_id=actor.person_id, declared_size=size,
                       declared_sha256=sha256, received_bytes=0, status=status, created_at=now(), updated_at=now())
    db.session.add(upload)
    db.session.flush()
    return upload


def record_start(actor: Actor, upload: BidUpload, lot: Lot) -> None:
    summary = {"upload": upload.id, "lot": lot.code, "size": upload.declared_size, "sha256": upload.declared_sha256}
    if actor.device:  # where the bid came from: evidence for the collusion screens (条例 §40, same device)
        summary["device"] = actor.device
    audit.record(actor, "bid.upload.start", "tender", upload.tender_id, summary)


def create_upload(actor: Actor, tender: Tender, lot: Lot, *, size: int, sha256: str) -> BidUpload:
    """Open an upload session for one envelope of ``size`` bytes with SHA-256 ``sha256`` (hex)."""
    upload = open_upload(actor, tender, lot, size=size, sha256=sha256)
    record_start(actor, upload, lot)
    return upload


def get_upload(actor: Actor, upload_id: str) -> BidUpload:
    """The upload of the actor's organisation (404 for anyone else: its existence is not disclosed)."""
    upload = db.session.get(BidUpload, upload_id) if upload_id.isalnum() else None
    if upload is None or actor.organisation_id is None or upload.organisation_id != actor.organisation_id:
        raise UploadNotFound()
    return upload


def received_bytes(upload: BidUpload) -> int:
    """Bytes received so far (the spool file is the truth; a finalized upload has all of them)."""
    if upload.status == UploadStatus.FINALIZED:
        return upload.declared_size
    return spool.received(upload.id)


def _require_active(upload: BidUpload, *, finalizing_ok: bool) -> None:
    if upload.status == UploadStatus.OPEN or (finalizing_ok and upload.status == UploadStatus.FINALIZING):
        return
    messages = {
        UploadStatus.FINALIZING: _l("This upload is being finalized and takes no more data."),
        UploadStatus.FINALIZED: _l("This upload was already finalized; start a new upload to replace the bid."),
        UploadStatus.FAILED: _l("This upload was refused (%(reason)s); start a new upload."),
        UploadStatus.CANCELLED: _l("This upload was cancelled; start a new upload."),
        UploadStatus.WITHDRAWN: _l("This upload was not finalized before the bid deadline and counts as "
                                   "withdrawn."),
    }
    raise UploadClosed(messages[upload.status], code=f"upload_{upload.status.value}",
                       reason=upload.failure_message or "-")


def append_chunk(actor: Actor, upload: BidUpload, offset: int, data: bytes) -> int:
    """Write ``data`` at ``offset``; return the bytes received. A resent identical chunk changes nothing."""
    locked = lock_upload(upload.id)
    if locked is None or locked.organisation_id != actor.organisation_id:
        raise UploadNotFound()
    _require_active(locked, finalizing_ok=False)
    require_open_for_bids(locked.tender, now())
    have = spool.received(locked.id)
    plan = chunk_plan(have, offset, len(data), locked.declared_size, MAX_CHUNK)
    if plan == "empty":
        raise InvalidInput(fields={"body": [_l("Send at least one byte.")]})
    if plan == "too_big":
        raise UploadTooLarge(_l("Send chunks of at most %(n)s bytes."), code="chunk_too_large", n=MAX_CHUNK)
    if plan == "beyond":
        raise UploadTooLarge(_l("This chunk ends at byte %(end)s, past the %(size)s bytes declared for the "
                                "envelope."), code="beyond_declared_size", end=offset + len(data),
                             size=locked.declared_size)
    if plan == "gap":
        raise OffsetMismatch(_l("The chunk starts at byte %(offset)s but %(received)s bytes have been received; "
                                "resume at offset %(received)s."), offset=offset, received=have)
    if plan == "overlap":
        overlap = min(have - offset, len(data))
        if spool.read_range(locked.id, offset, overlap) != data[:overlap]:
            raise OffsetMismatch(_l("The chunk at byte %(offset)s differs from the bytes already received there; "
                                    "resume at offset %(received)s."), offset=offset, received=have)
        data = data[overlap:]
    if data:
        have = spool.append(locked.id, data)
    locked.received_bytes = have
    locked.updated_at = now()
    db.session.flush()
    return have


def cancel_upload(actor: Actor, upload: BidUpload) -> BidUpload:
    """Abandon an unfinished upload; its bytes are deleted after the commit."""
    locked = lock_upload(upload.id)
    _require_active(locked, finalizing_ok=False)
    locked.status, locked.finished_at = UploadStatus.CANCELLED, now()
    db.session.flush()
    after_commit(lambda: spool.discard(locked.id))
    audit.record(actor, "bid.upload.cancel", "tender", locked.tender_id, {"upload": locked.id})
    return locked


# --- finalize ------------------------------------------------------------------------------------

def begin_finalize(actor: Actor, upload: BidUpload) -> BidUpload:
    """Step 1: refuse an incomplete upload (it stays open), else freeze it for checking."""
    locked = lock_upload(upload.id)
    if locked is None or locked.organisation_id != actor.organisation_id:
        raise UploadNotFound()
    if locked.status == UploadStatus.FINALIZED:
        return locked
    _require_active(locked, finalizing_ok=True)
    require_open_for_bids(locked.tender, now())
    if locked.status == UploadStatus.OPEN:
        have = spool.received(locked.id)
        if have != locked.declared_size:
            raise UploadIncomplete(_l("%(received)s of the %(size)s declared bytes have been received; send the "
                                      "rest from offset %(received)s, then finalize."),
                                   received=have, size=locked.declared_size)
        locked.status, locked.updated_at = UploadStatus.FINALIZING, now()
        db.session.flush()
    return locked


def current_bid(lot_id: int, organisation_id: int) -> Bid | None:
    return db.session.scalar(select(Bid).where(Bid.lot_id == lot_id, Bid.organisation_id == organisation_id,
                                               Bid.is_current.is_(True)))


def next_version(lot_id: int, organisation_id: int) -> int:
    latest = db.session.scalar(select(func.max(Bid.version)).where(Bid.lot_id == lot_id,
                                                                   Bid.organisation_id == organisation_id))
    return (latest or 0) + 1


@dataclass(frozen=True)
class AcceptedBid:
    """What step 3 decided under the lock; the proofs follow from it without reading earlier leaves."""

    bid: Bid
    commitment: BidderCommitment
    entry: bytes
    previous_head_size: int | None
    frontier_before: list[bytes]  # the log's compact range just before the bid's entry: its inclusion proof


def complete(actor: Actor, upload: BidUpload, checked: CheckedEnvelope) -> AcceptedBid | Submitted:
    """Step 3, under the tender lock: deadline by status and clock, version, bid, log entry, receipt.

    The critical section is kept to a few statements: everything that does not decide the order or the
    deadline cut (certificates, the envelope check) happened in step 2, and the proofs need no read of
    the log's leaves (:func:`accept`).
    """
    tender = lock_tender(upload.tender_id)
    upload = lock_upload(upload.id)
    if upload.status == UploadStatus.FINALIZED:
        return submitted(upload.bid)
    _require_active(upload, finalizing_ok=True)
    return accept(actor, tender, upload, checked)


def accept(actor: Actor, tender: Tender, upload: BidUpload, checked: CheckedEnvelope) -> AcceptedBid:
    """The bid of a checked envelope, with the tender locked by the caller (:func:`lock_tender`).

    ``upload`` is the locked upload of the resumable path, or the new row of a submission in one request
    (added and flushed here with the bid). Refusals are raised.
    """
    result = accept_many(tender, [Incoming(actor, upload, checked)])[0]
    if isinstance(result, DomainError):
        raise result
    return result


@dataclass(frozen=True)
class Incoming:
    """An envelope checked outside the lock, to become a bid: who sends it, its upload row, what was checked."""

    actor: Actor
    upload: BidUpload
    checked: CheckedEnvelope


def accept_many(tender: Tender, items: Sequence[Incoming], log: TenderLog | None = None) -> list[AcceptedBid | DomainError]:
    """Accept checked envelopes in order, with the tender locked by the caller, with one flush for all.

    At most one envelope per bidder and lot (the caller groups them so). All take the same time, read
    under the lock, for the deadline and their receipts. A refusal of them all (the deadline passed, the
    tender no longer open) is raised; an envelope's own refusal (a context naming another version) is
    returned in its place and nothing of it is written. The log row and the bidders' earlier bids are
    read again under the lock, never taken from the session as they were.
    """
    at = now()  # the receipts' time: taken under the lock
    if log is None:  # read again under the lock; held: appends reuse it
        log = db.session.get(TenderLog, tender.id, populate_existing=True)
    require_open_for_bids(tender, at)
    organisations = {item.upload.organisation_id: item.checked.uscc for item in items}
    earlier: dict[tuple[int, int], list[Bid]] = {}
    for bid in db.session.scalars(select(Bid).where(Bid.tender_id == tender.id,
                                                    Bid.organisation_id.in_(list(organisations)))
                                  .execution_options(populate_existing=True)):
        earlier.setdefault((bid.lot_id, bid.organisation_id), []).append(bid)
    decided: list[_Decision | DomainError] = []
    for item in items:
        theirs = earlier.get((item.upload.lot_id, item.upload.organisation_id), [])
        version = max((b.version for b in theirs), default=0) + 1
        refusal = context_refusal(expected_context(tender.code, item.checked.lot_code, item.checked.uscc, version),
                                  item.checked.context)
        if refusal is not None:
            decided.append(refused(refusal))
            continue
        previous = next((b for b in theirs if b.is_current), None)
        last = next((b for b in theirs if b.version == version - 1), None)
        if previous is not None:
            previous.is_current, previous.replaced_at = False, at
        decided.append(_Decision(item, version, previous, last))
    if any(isinstance(d, _Decision) and d.previous is not None for d in decided):
        db.session.flush()  # before the new current bids: the partial unique index allows one per bidder and lot
    out: list[AcceptedBid | DomainError] = []
    events = []
    for decision in decided:
        if isinstance(decision, DomainError):
            out.append(decision)
            continue
        accepted, summary = _append_bid(tender, decision, at)
        out.append(accepted)
        events.append((decision.item.actor, "bid.replace" if decision.previous else "bid.submit", "tender",
                       tender.id, summary))
    db.session.flush()
    if events:
        audit.record_many(events)
    return out


class _Decision(NamedTuple):
    """An envelope to accept under the lock: its bid version, the current bid it replaces, the bidder's last."""

    item: Incoming
    version: int
    previous: Bid | None
    last: Bid | None


def _append_bid(tender: Tender, decision: _Decision, at: datetime) -> tuple[AcceptedBid, dict]:
    """One accepted envelope: padding, its log entry, the signed tree head and receipt, the bid (not flushed)."""
    item, version, previous, last = decision
    checked, upload, commitment = item.checked, item.upload, item.checked.commitment
    previous_head_size = (last.withdrawal_head_size or last.head_size) if last is not None else None
    translog.pad(tender, at)
    fields = {"lot": checked.lot_code, "bidder": commitment.commitment, "bid_version": version,
              "envelope_sha256": checked.sha256, "envelope_size": checked.size, "at_ms": epoch_ms(at)}
    if previous is not None:
        entry = log_entry("replacement", tender=tender.code, replaces_sha256=previous.envelope_sha256, **fields)
    else:
        entry = log_entry("submission", tender=tender.code, **fields)
    frontier_before = translog.frontier(tender)
    index = translog.append(tender, entry)
    head, head_doc = translog.sign_head(tender, at, appended=True)
    receipt = issue_receipt(tender_code=tender.code, lot_code=checked.lot_code, bidder=commitment.commitment,
                            bid_version=version, envelope_sha256=checked.sha256, envelope_size=checked.size,
                            received_at=at, log_index=index, tree_head=head_doc)
    bid = Bid(public_id=secrets.token_hex(16), tender_id=tender.id, lot_id=upload.lot_id,
              organisation_id=upload.organisation_id, submitted_by_id=item.actor.person_id,
              signer_certificate_id=checked.certificate_id, version=version, envelope_sha256=checked.sha256,
              envelope_size=checked.size, received_at=at, is_current=True, log_index=index,
              head_size=head.tree_size, receipt=receipt.to_json().decode(),
              tender=tender, lot=db.session.get(Lot, upload.lot_id))  # as loaded: the answer names both
    upload.status, upload.bid, upload.finished_at, upload.updated_at = UploadStatus.FINALIZED, bid, at, at
    db.session.add_all((bid, upload))
    summary = {"lot": checked.lot_code, "bid": bid.public_id, "version": version, "sha256": checked.sha256,
               "size": checked.size, "log_index": index, "upload": upload.id,
               "replaces": previous.public_id if previous else None}
    if item.actor.device:  # where the bid came from: evidence for the collusion screens (条例 §40, same device)
        summary["device"] = item.actor.device
    return AcceptedBid(bid, commitment, entry, previous_head_size, frontier_before), summary


def finalize(actor: Actor, upload: BidUpload) -> tuple[Submitted, bool]:
    """Finalize in its three transactions (this commits); return the receipt bundle and whether it is new.

    A refusal in step 2 or 3 is recorded on the upload (a deadline refusal counts as withdrawn) and raised.
    """
    upload = begin_finalize(actor, upload)
    db.session.commit()
    if upload.status == UploadStatus.FINALIZED:
        return submitted(upload.bid), False
    upload_id = upload.id
    try:
        checked = check_envelope(actor, upload)
        db.session.commit()  # end the read: the tender lock must come first in the next transaction
    except DomainError as exc:
        _refuse(actor, upload_id, exc)
    return settle(actor, upload, checked)


def settle(actor: Actor, upload: BidUpload, checked: CheckedEnvelope) -> tuple[Submitted, bool]:
    """Step 3 in its own transaction (this commits), then the proofs; a refusal is recorded and raised."""
    upload_id = upload.id
    try:
        result = complete(actor, upload, checked)
        db.session.commit()
    except DomainError as exc:
        _refuse(actor, upload_id, exc)
    if isinstance(result, Submitted):
        return result, False
    return bundle(result.bid, result.commitment, result.entry, result.previous_head_size,
                  frontier_before=result.frontier_before), True


def _refuse(actor: Actor, upload_id: str, exc: DomainError) -> NoReturn:
    db.session.rollback()
    abandon(actor, upload_id, exc)
    db.session.commit()
    raise exc


def abandon(actor: Actor, upload_id: str, error: Exception) -> None:
    """After a refused step 2 or 3 (rolled back): record why; a deadline refusal counts as withdrawn."""
    upload = lock_upload(upload_id)
    if upload is None or upload.status not in ACTIVE:
        return
    late = isinstance(error, DeadlinePassed)
    if not late and isinstance(error, UploadClosed):
        return
    upload.status = UploadStatus.WITHDRAWN if late else UploadStatus.FAILED
    upload.failure_code, message = refusal_summary(error)
    upload.failure_message = message
    upload.finished_at = upload.updated_at = now()
    db.session.flush()
    uid = upload.id
    after_commit(lambda: spool.discard(uid))
    audit.record(actor, "bid.upload.withdrawn" if late else "bid.upload.refused", "tender", upload.tender_id,
                 {"upload": uid, "code": upload.failure_code, "reason": message})


def refusal_summary(error: Exception) -> tuple[str, str]:
    """An upload's failure code (at most 40 characters) and the message the bidder was given."""
    message = error.to_dict()["message"] if hasattr(error, "to_dict") else str(error)
    return getattr(error, "code", "error")[:40], message


@dataclass(frozen=True)
class Withdrawn:
    """A withdrawal (撤回) recorded in the log: the entry, its signed tree head and inclusion proof."""

    bid: Bid
    entry: bytes
    tree_head: str
    inclusion_proof: list[bytes]


def withdraw(actor: Actor, tender: Tender, lot: Lot) -> Withdrawn:
    """Withdraw the organisation's current bid for ``lot`` before the deadline (its bond is then refundable)."""
    require_bidder(actor, tender)
    if lot.tender_id != tender.id:
        raise InvalidInput(_l("Lot %(lot)s is not a lot of tender %(tender)s."), code="wrong_lot",
                           fields={"lot_id": [_l("Not a lot of this tender.")]}, lot=lot.id, tender=tender.code)
    tender = lock_tender(tender.id)
    at = now()
    require_open_for_bids(tender, at)
    bid = current_bid(lot.id, actor.organisation_id)
    if bid is None:
        raise NoBid()
    commitment = translog.commitment_for(tender, bid.organisation_id, bid.organisation.uscc)
    translog.pad(tender, at)
    bid.is_current, bid.withdrawn_at = False, at
    index = translog.append_event(tender, "withdrawal", lot=lot.code, bidder=commitment.commitment,
                                  bid_version=bid.version, at_ms=epoch_ms(at), reason="bidder")
    head, head_doc = translog.sign_head(tender, at)
    bid.withdrawal_index, bid.withdrawal_head_size = index, head.tree_size
    db.session.flush()
    bid_withdrawn.send(bid, actor=actor, at=at)
    audit.record(actor, "bid.withdraw", "tender", tender.id,
                 {"lot": lot.code, "bid": bid.public_id, "version": bid.version, "log_index": index})
    entry = translog.entry_at(tender.id, index)
    return Withdrawn(bid, entry.entry, head.document, translog.inclusion_proof(tender.id, index, head.tree_size))
