"""Closing at the bid deadline (投标截止): lock submissions, fix the set of bids, publish the final tree head.

Run by the periodic task and on every request (:mod:`bidding.tasks`), idempotent, under the tender's
row lock so that it cuts exactly between the submissions before the deadline and those after:

1. uploads not finalized count as withdrawn (20号令 §27) and their bytes are deleted;
2. an ``opening`` entry lists the current bids (lot, bidder commitment, version, envelope hash) and the
   final signed tree head covers it: the set of bids opened must equal this set;
3. the counts per lot become public; a lot with fewer than three bids is not opened (招标投标法 §28);
   the tender moves to ``opening`` when at least one lot can be opened, else to ``failed`` (流标).

A tender suspended by a pending objection (条例 §22) is still closed for bids at its deadline; it stays
``published`` (closed) until the objection is answered, and the next run moves it on. Closing is final:
postponing the deadline afterwards does not reopen submissions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select

from bidding import lifecycle, translog
from bidding import sealed_spool as spool
from bidding.models import Lot, Tender, TenderStatus
from bidding.policy import flush_tender
from bidding.receipts import epoch_ms
from bidding.sealed_checks import lock_tender
from bidding.sealed_models import Bid, BidderCommitment, BidUpload, TenderLog, UploadStatus
from bidding.sealed_rules import lot_outcomes
from bidding.services import lots_failed, tender_failed
from core import audit
from core.actor import Actor
from core.clock import as_utc, now
from core.db import after_commit, db
from core.realtime import publish, room


def due_tender_ids(at: datetime) -> list[int]:
    """Published tenders past their deadline that still need closing or moving on."""
    stmt = (select(Tender.id).outerjoin(TenderLog, TenderLog.tender_id == Tender.id)
            .where(Tender.status == TenderStatus.PUBLISHED, Tender.bid_deadline_at <= at,
                   or_(TenderLog.closed_at.is_(None), Tender.is_suspended.is_(False)))
            .order_by(Tender.bid_deadline_at, Tender.id))
    return list(db.session.scalars(stmt))


def next_deadline(at: datetime) -> datetime | None:
    """The earliest bid deadline after ``at`` among published tenders (None: none is coming)."""
    value = db.session.scalar(select(func.min(Tender.bid_deadline_at)).where(
        Tender.status == TenderStatus.PUBLISHED, Tender.bid_deadline_at > at))
    return as_utc(value) if value is not None else None


def _withdraw_unfinished(actor: Actor, tender: Tender, at: datetime) -> list[str]:
    uploads = list(db.session.scalars(select(BidUpload).where(
        BidUpload.tender_id == tender.id, BidUpload.status.in_((UploadStatus.OPEN, UploadStatus.FINALIZING)))
        .order_by(BidUpload.created_at, BidUpload.id)))
    for upload in uploads:
        upload.status, upload.failure_code = UploadStatus.WITHDRAWN, "unfinished_at_deadline"
        upload.failure_message = "not finalized before the bid deadline: deemed withdrawn (20号令 §27)"
        upload.finished_at = upload.updated_at = at
    ids = [u.id for u in uploads]
    if ids:
        db.session.flush()
        after_commit(lambda: [spool.discard(i) for i in ids])
        audit.record(actor, "bid.upload.withdrawn", "tender", tender.id,
                     {"uploads": ids, "reason": "unfinished_at_deadline"})
    return ids


def _seal_the_set(actor: Actor, tender: Tender, log: TenderLog, at: datetime) -> None:
    withdrawn = _withdraw_unfinished(actor, tender, at)
    rows = db.session.execute(
        select(Bid, Lot.code, BidderCommitment.commitment)
        .join(Lot, Lot.id == Bid.lot_id)
        .join(BidderCommitment, (BidderCommitment.tender_id == Bid.tender_id)
              & (BidderCommitment.organisation_id == Bid.organisation_id))
        .where(Bid.tender_id == tender.id, Bid.is_current.is_(True))).all()
    bids = _sorted_bids({"lot": code, "bidder": commitment, "bid_version": bid.version,
                         "envelope_sha256": bid.envelope_sha256} for bid, code, commitment in rows)
    counts = {lot.code: 0 for lot in tender.lots}
    for _bid, code, _c in rows:
        counts[code] += 1
    size_before = log.size
    translog.append_event(tender, "opening", tree_size=size_before, bids=bids, at_ms=epoch_ms(at))
    head, _doc = translog.sign_head(tender, at, final=True)
    lots, outcome = lot_outcomes(counts)
    log.closed_at = at
    log.closing = {"closed_at": at.isoformat(), "lots": lots, "total": len(rows), "outcome": outcome,
                   "final_tree_size": head.tree_size, "withdrawn_uploads": len(withdrawn)}
    db.session.flush()
    audit.record(actor, "tender.close", "tender", tender.id, {
        "deadline": as_utc(tender.bid_deadline_at).isoformat(), "bids": len(rows), "lots": lots,
        "final_tree_size": head.tree_size, "root_hash": head.root_hash, "withdrawn_uploads": len(withdrawn)})


def _sorted_bids(items: Any) -> list[dict[str, Any]]:
    return sorted(items, key=lambda b: (b["lot"], b["bidder"], b["bid_version"]))


def close_tender(actor: Actor, tender_id: int) -> str | None:
    """Close one tender if its deadline has passed; return what happened (None: nothing to do).

    Takes the tender lock first, so call it at the start of a transaction; the caller commits.
    """
    tender = lock_tender(tender_id)
    at = now()
    if tender.status != TenderStatus.PUBLISHED or tender.bid_deadline_at is None \
            or at < as_utc(tender.bid_deadline_at):
        return None
    log = translog.open_log(tender)
    closed_now = log.closed_at is None
    if closed_now:
        _seal_the_set(actor, tender, log, at)
    if tender.is_suspended:
        return "closed_suspended" if closed_now else None
    target = TenderStatus(log.closing["outcome"])
    old = lifecycle.transition(tender, target)
    flush_tender()
    audit.record(actor, "tender.opening" if target == TenderStatus.OPENING else "tender.failed", "tender", tender.id,
                 {"status": [old.value, target.value], "lots": log.closing["lots"]})
    if target == TenderStatus.FAILED:
        tender_failed.send(tender, actor=actor, at=at)
    elif failed := sorted(code for code, v in log.closing["lots"].items() if not v["opened"]):
        lots_failed.send(tender, actor=actor, at=at, lots=failed)
    publish("tender.closed", {"tender_id": tender.id, "status": target.value, "lots": log.closing["lots"],
                              "final_tree_size": log.closing["final_tree_size"]}, room=room("tender", tender.id))
    return target.value


def is_closed(tender: Tender) -> bool:
    log = db.session.get(TenderLog, tender.id)
    return log is not None and log.closed_at is not None
