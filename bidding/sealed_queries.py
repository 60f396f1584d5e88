"""Read models of sealed bids, and who may see what of a tender's log when.

Published when (see docs/bids-api.md):

* before the deadline: the opening key and the sealing parameters (public); a bidder sees its own bids,
  receipts, log entries, and proofs between the tree heads it was given; nobody learns whether or how
  many other bids exist (not the tenderer, not the public, not another bidder);
* at the deadline (closing): the final signed tree head, every entry (bidders as salted commitments),
  proofs for any size, and the number of bids per lot;
* from the opening on (status opening and later, not for a failed tender): the commitments' openings
  (salt and USCC), so anyone can tell which bidder stands behind each entry.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from bidding import translog
from bidding.models import Lot, Tender, TenderStatus
from bidding.sealed_checks import max_bid_bytes
from bidding.sealed_closing import is_closed
from bidding.sealed_models import Bid, BidderCommitment, BidUpload, TenderLog, UploadStatus
from bidding.sealed_rules import BID_CONTEXT_TYPE, BIDDER_DECRYPTS
from bidding.submissions import MAX_CHUNK, next_version, received_bytes
from core.actor import Actor
from core.db import db
from crypto.header import DEFAULT_SEGMENT_SIZE
from crypto.receipt import SignedDocument

OPENED = frozenset({TenderStatus.OPENING, TenderStatus.EVALUATION, TenderStatus.PUBLICITY, TenderStatus.AWARDED})


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hexes(hashes: list[bytes]) -> list[str]:
    return [h.hex() for h in hashes]


def signed(document: str | None) -> dict[str, Any] | None:
    return SignedDocument.from_json(document).as_dict() if document else None


def upload_out(upload: BidUpload) -> dict[str, Any]:
    return {"id": upload.id, "tender_id": upload.tender_id, "lot_id": upload.lot_id, "size": upload.declared_size,
            "sha256": upload.declared_sha256, "received": received_bytes(upload), "status": upload.status.value,
            "failure_code": upload.failure_code, "failure_message": upload.failure_message,
            "created_at": upload.created_at, "max_chunk": MAX_CHUNK,
            "bid_id": upload.bid.public_id if upload.bid is not None else None}


def sealing_parameters(tender: Tender) -> dict[str, Any]:
    """What a sealing client needs: context fields, recipients, key mode, limits (public)."""
    mode = tender.decryption_mode.value
    return {
        "tender_id": tender.id, "tender_code": tender.code, "decryption_mode": mode,
        "key_mode": "split" if mode == "double_envelope" else "single", "suite": 1,
        "recipients": {"tender_key": tender.opening_key_id is not None, "bidder_key": mode in BIDDER_DECRYPTS},
        "opening_key": ({"key_id": tender.opening_key_id, "public_key_pem": tender.opening_public_key_pem}
                        if tender.opening_key_id else None),
        "bid_deadline_at": tender.bid_deadline_at, "accepting_bids": tender.status == TenderStatus.PUBLISHED
        and not is_closed(tender),
        "segment_size": DEFAULT_SEGMENT_SIZE, "max_chunk": MAX_CHUNK,
        "context": {"type": BID_CONTEXT_TYPE, "tender": tender.code, "lot": "<lot code>",
                    "bidder": "<your organisation's USCC>", "bid_version": "<next_bid_version from /api/my/bids>"},
        "lots": [{"id": lot.id, "code": lot.code, "title": lot.title, "max_envelope_bytes": max_bid_bytes(lot)}
                 for lot in tender.lots],
    }


def my_lots(actor: Actor, tender: Tender | None = None) -> list[dict[str, Any]]:
    """The organisation's bids and unfinished uploads, per lot (every lot of ``tender`` when given)."""
    stmt = select(Bid).where(Bid.organisation_id == actor.organisation_id)
    ustmt = select(BidUpload).where(BidUpload.organisation_id == actor.organisation_id,
                                    BidUpload.status.in_((UploadStatus.OPEN, UploadStatus.FINALIZING)))
    if tender is not None:
        stmt, ustmt = stmt.where(Bid.tender_id == tender.id), ustmt.where(BidUpload.tender_id == tender.id)
    bids = list(db.session.scalars(stmt.order_by(Bid.tender_id, Bid.lot_id, Bid.version)))
    uploads = list(db.session.scalars(ustmt.order_by(BidUpload.created_at)))
    lots: dict[int, Lot] = {lot.id: lot for lot in (tender.lots if tender is not None else [])}
    for item in [*bids, *uploads]:
        lots.setdefault(item.lot_id, item.lot)
    out = []
    for lot in sorted(lots.values(), key=lambda lot: (lot.tender_id, lot.number)):
        history = [b for b in bids if b.lot_id == lot.id]
        out.append({"tender_id": lot.tender_id, "tender_code": lot.tender.code, "lot_id": lot.id, "lot_code": lot.code,
                    "next_bid_version": next_version(lot.id, actor.organisation_id),
                    "current": next((b for b in history if b.is_current), None), "history": history,
                    "uploads": [upload_out(u) for u in uploads if u.lot_id == lot.id]})
    return out


@dataclass(frozen=True)
class Visibility:
    """What of a tender's log a requester may see: everything (public), or its own indexes and head sizes."""

    public: bool
    indexes: frozenset[int] = frozenset()
    sizes: frozenset[int] = frozenset()


def visibility(tender: Tender, organisation_id: int | None) -> Visibility:
    if is_closed(tender):
        return Visibility(True)
    if organisation_id is None:
        return Visibility(False)
    bids = list(db.session.scalars(select(Bid).where(Bid.tender_id == tender.id,
                                                     Bid.organisation_id == organisation_id)))
    indexes = {b.log_index for b in bids} | {b.withdrawal_index for b in bids if b.withdrawal_index is not None}
    sizes = {b.head_size for b in bids} | {b.withdrawal_head_size for b in bids if b.withdrawal_head_size}
    return Visibility(False, frozenset(indexes), frozenset(sizes))


def closing_of(tender: Tender) -> dict[str, Any] | None:
    log = db.session.get(TenderLog, tender.id)
    return dict(log.closing) if log is not None and log.closed_at is not None else None


def commitment_openings(tender: Tender) -> list[dict[str, Any]]:
    # a commitment is made when an envelope passes its checks; only those that reached the log are shown
    in_log = select(Bid.id).where(Bid.tender_id == tender.id, Bid.organisation_id == BidderCommitment.organisation_id)
    rows = db.session.scalars(select(BidderCommitment).where(BidderCommitment.tender_id == tender.id,
                                                             in_log.exists()).order_by(BidderCommitment.commitment))
    return [{"commitment": c.commitment, "salt": c.salt, "uscc": c.organisation.uscc, "name": c.organisation.name}
            for c in rows]


def heads(tender: Tender) -> dict[str, Any]:
    final, latest = translog.final_head(tender.id), translog.latest_head(tender.id)
    return {"final": signed(final.document) if final else None, "latest": signed(latest.document) if latest else None}
