"""The receipt bundle of an accepted bid (回执): the bid, its log entry and the proofs a bidder checks offline."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from bidding import translog
from bidding.sealed_models import Bid, BidderCommitment
from core.db import db
from crypto import merkle

__all__ = ["Submitted", "bundle", "submitted"]


@dataclass(frozen=True)
class Submitted:
    """An accepted envelope: the bid, its receipt and what lets the bidder check the receipt offline."""

    bid: Bid
    commitment: BidderCommitment
    entry: bytes
    inclusion_proof: list[bytes]
    previous_head_size: int | None
    consistency_proof: list[bytes] | None


def bundle(bid: Bid, commitment: BidderCommitment, entry: bytes, previous_head_size: int | None, *,
           frontier_before: list[bytes] | None = None) -> Submitted:
    """The proofs for ``bid``.

    ``frontier_before``: the log's compact range just before the bid's entry, when that entry is the last
    one of the bid's tree head (a bid just accepted): its inclusion proof then needs no read. Otherwise,
    and for the consistency proof of a replacement, one read of the log's leaf hashes (outside any lock).
    """
    inclusion = None
    if frontier_before is not None and bid.log_index == bid.head_size - 1:
        inclusion = merkle.last_leaf_inclusion_proof(frontier_before)
    consistency = None
    if inclusion is None or previous_head_size:
        tree = merkle.MerkleTree.from_leaf_hashes(translog.leaf_hashes(bid.tender_id, bid.head_size))
        inclusion = inclusion if inclusion is not None else tree.inclusion_proof(bid.log_index, bid.head_size)
        consistency = tree.consistency_proof(previous_head_size, bid.head_size) if previous_head_size else None
    return Submitted(bid, commitment, entry, inclusion, previous_head_size, consistency)


def _previous_head_size(bid: Bid) -> int | None:
    previous = db.session.scalar(select(Bid).where(Bid.lot_id == bid.lot_id, Bid.organisation_id == bid.organisation_id,
                                                   Bid.version == bid.version - 1))
    return previous.withdrawal_head_size or previous.head_size if previous is not None else None


def submitted(bid: Bid) -> Submitted:
    """The receipt bundle of an accepted bid (also for a repeated finalize)."""
    commitment = db.session.scalar(select(BidderCommitment).where(BidderCommitment.tender_id == bid.tender_id,
                                                                  BidderCommitment.organisation_id == bid.organisation_id))
    return bundle(bid, commitment, translog.entry_at(bid.tender_id, bid.log_index).entry, _previous_head_size(bid))
