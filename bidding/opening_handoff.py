"""Hand-off check (移交): the set of bids opened equals the set in the transparency log's final tree head.

Used by the opening record and by evaluation before they rely on the decrypted bids. From the stored
log entries alone it recomputes the Merkle root of the final head's size (RFC 6962) and compares it with
the signed final head (signature checked with the log key); it reads the ``opening`` entry inside that
tree, and compares its bids of the opened lots (lot, bidder commitment, version, envelope SHA-256) with
the bids the opening handled. Any bid missing, any extra bid, any altered entry fails the check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from bidding import translog
from bidding.models import Lot, Tender
from bidding.opening import opened_lot_codes
from bidding.opening_models import BidOpening
from bidding.receipts import log_key
from bidding.sealed_models import Bid, BidderCommitment, LogEntry
from core.db import db
from crypto import merkle
from crypto.errors import CryptoError
from crypto.receipt import SignedDocument, parse_log_entry, verify_tree_head

BidKey = tuple[str, str, int, str]  # lot code, bidder commitment, bid version, envelope SHA-256


@dataclass(frozen=True)
class HandoffCheck:
    ok: bool
    message: str
    final_tree_size: int | None = None
    root_hash: str | None = None
    logged: list[BidKey] = field(default_factory=list)
    opened: list[BidKey] = field(default_factory=list)
    missing: list[BidKey] = field(default_factory=list)  # logged, not opened
    extra: list[BidKey] = field(default_factory=list)  # opened, not logged

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "message": self.message, "final_tree_size": self.final_tree_size,
                "root_hash": self.root_hash, "logged": [list(k) for k in self.logged],
                "opened": [list(k) for k in self.opened], "missing": [list(k) for k in self.missing],
                "extra": [list(k) for k in self.extra]}


def compare_sets(logged: list[BidKey], opened: list[BidKey]) -> tuple[list[BidKey], list[BidKey]]:
    """(missing, extra): bids logged but not opened, and opened but not logged (pure)."""
    return sorted(set(logged) - set(opened)), sorted(set(opened) - set(logged))


def handoff_check(tender_id: int) -> HandoffCheck:
    """Prove (or refute) that the bids opened are exactly the bids in the final tree head."""
    tender = db.session.get(Tender, tender_id)
    head = translog.final_head(tender_id)
    if head is None:
        return HandoffCheck(False, "the tender has no final tree head: it was not closed at its deadline")
    try:
        verify_tree_head(SignedDocument.from_json(head.document), log_key().public_key())
    except CryptoError as exc:
        return HandoffCheck(False, f"the final tree head's signature does not verify: {exc}", head.tree_size)
    entries = list(db.session.scalars(select(LogEntry).where(LogEntry.tender_id == tender_id,
                                                             LogEntry.index < head.tree_size).order_by(LogEntry.index)))
    if [e.index for e in entries] != list(range(head.tree_size)):
        return HandoffCheck(False, "log entries inside the final tree head are missing", head.tree_size)
    root = merkle.root_hash([merkle.leaf_hash(e.entry) for e in entries]).hex()
    if root != head.root_hash:
        return HandoffCheck(False, "the log entries do not hash to the final tree head's root", head.tree_size,
                            head.root_hash)
    openings = [e for e in entries if e.kind == "opening"]
    if len(openings) != 1:
        return HandoffCheck(False, f"the final tree head covers {len(openings)} opening entries, not one",
                            head.tree_size, root)
    lots = opened_lot_codes(tender)
    logged = sorted((b["lot"], b["bidder"], b["bid_version"], b["envelope_sha256"])
                    for b in parse_log_entry(openings[0].entry)["bids"] if b["lot"] in lots)
    rows = db.session.execute(
        select(Lot.code, BidderCommitment.commitment, Bid.version, Bid.envelope_sha256)
        .select_from(BidOpening).join(Bid, Bid.id == BidOpening.bid_id).join(Lot, Lot.id == Bid.lot_id)
        .join(BidderCommitment, (BidderCommitment.tender_id == Bid.tender_id)
              & (BidderCommitment.organisation_id == Bid.organisation_id))
        .where(BidOpening.tender_id == tender_id)).all()
    opened = sorted((c, b, v, s) for c, b, v, s in rows)
    missing, extra = compare_sets(logged, opened)
    ok = not missing and not extra
    message = ("the bids opened are exactly the bids in the final tree head" if ok else
               f"{len(missing)} logged bid(s) not opened, {len(extra)} opened bid(s) not in the log")
    return HandoffCheck(ok, message, head.tree_size, root, logged, opened, missing, extra)
