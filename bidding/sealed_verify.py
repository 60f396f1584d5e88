"""Check what the server stores for a tender's sealed bids (``ebid bids verify``): nothing altered.

Every flipped, truncated, reordered or appended byte shows up as a named problem:

* log entries: a gap in the indexes, bytes that no longer match the leaf hash recorded at append time,
  malformed entries, entries that no signed tree head covers;
* tree heads: the log key's signature, and the root recomputed from the entries' own bytes;
* receipts: the receipt key's signature, its tree head, its log entry and inclusion proof, and that it
  names the stored envelope's hash, size and version;
* envelopes: present in the store, hash and size, and (``deep``) the full structure, every byte under
  the bidder's signature and the context (tender, lot, bidder, version);
* after closing: the ``opening`` entry lists exactly the current bids.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography import x509
from sqlalchemy import select

from bidding.models import Lot, Tender
from bidding.receipts import log_key, receipt_key
from bidding.sealed_models import Bid, BidderCommitment, LogEntry, TenderLog, TreeHead
from core.db import db
from core.storage import default_store
from crypto import merkle
from crypto.envelope import bid_context, verify_stream
from crypto.errors import CryptoError
from crypto.receipt import parse_log_entry, verify_receipt, verify_tree_head


@dataclass(frozen=True)
class Problem:
    subject: str
    message: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.message}"


@dataclass
class Report:
    entries: int = 0
    heads: int = 0
    bids: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, subject: str, message: str) -> None:
        self.problems.append(Problem(subject, message))


def _entries(tender: Tender, report: Report) -> tuple[list[bytes], dict[int, LogEntry]]:
    """Leaf hashes recomputed from the stored bytes, up to the first gap; rows by index."""
    rows = {r.index: r for r in db.session.scalars(select(LogEntry).where(LogEntry.tender_id == tender.id))}
    report.entries = len(rows)
    count = max(rows) + 1 if rows else 0
    leaves: list[bytes] = []
    gap = False
    for index in range(count):
        row = rows.get(index)
        if row is None:
            report.add(f"log entry {index}", "missing: an entry was deleted from the log")
            gap = True
            continue
        try:
            parse_log_entry(row.entry)
        except CryptoError as exc:
            report.add(f"log entry {index}", f"not a well-formed entry ({exc})")
        leaf = merkle.leaf_hash(row.entry)
        if leaf.hex() != row.leaf_hash:
            report.add(f"log entry {index}", "its bytes changed after it was appended (they no longer match the "
                                             "leaf hash recorded then)")
        if not gap:
            leaves.append(leaf)
    log = db.session.get(TenderLog, tender.id)
    if log is not None and log.size != count:
        report.add("log", f"the log records {log.size} entries but entries 0..{count - 1} are stored")
    return leaves, rows


def _heads(tender: Tender, leaves: list[bytes], stored: int, report: Report) -> None:
    public = log_key().public_key()
    heads = list(db.session.scalars(select(TreeHead).where(TreeHead.tender_id == tender.id)
                                    .order_by(TreeHead.tree_size)))
    report.heads = len(heads)
    covered = 0
    for head in heads:
        subject = f"tree head of size {head.tree_size}"
        try:
            signed = verify_tree_head(head.document, public)
        except CryptoError as exc:
            report.add(subject, str(exc))
            continue
        if signed.tree_size != head.tree_size or signed.root_hash.hex() != head.root_hash:
            report.add(subject, "the stored size or root differs from the signed document")
        if signed.tree_size > len(leaves):
            report.add(subject, f"signed for {signed.tree_size} entries but only {len(leaves)} are intact in "
                                "order: the log was truncated or an entry deleted")
        elif merkle.root_hash(leaves[:signed.tree_size]) != signed.root_hash:
            report.add(subject, "the entries no longer produce the signed root: an entry before it was changed, "
                                "removed, reordered or inserted")
        covered = max(covered, signed.tree_size)
    if stored > covered:
        report.add("log", f"entries {covered}..{stored - 1} are not covered by any signed tree head (appended "
                          "outside the platform's own code)")


def _bid(bid: Bid, lot: Lot, leaves: list[bytes], rows: dict[int, LogEntry], deep: bool, report: Report) -> None:
    subject = f"bid {bid.public_id} (lot {lot.code}, version {bid.version})"
    entry = rows.get(bid.log_index)
    try:
        proof = merkle.MerkleTree.from_leaf_hashes(leaves).inclusion_proof(bid.log_index, bid.head_size) \
            if entry is not None and bid.log_index < bid.head_size <= len(leaves) else None
        receipt = verify_receipt(bid.receipt, receipt_key=receipt_key().public_key(), log_key=log_key().public_key(),
                                 envelope_sha256=bytes.fromhex(bid.envelope_sha256), envelope_size=bid.envelope_size,
                                 log_entry_bytes=entry.entry if entry is not None else None, inclusion_proof=proof)
        if receipt.bid_version != bid.version or receipt.log_index != bid.log_index:
            report.add(f"{subject} receipt", "it names another version or log index than the stored bid")
        if entry is None or proof is None:
            report.add(f"{subject} receipt", "its log entry is missing from the log")
    except (CryptoError, ValueError) as exc:
        report.add(f"{subject} receipt", str(exc))
    store = default_store()
    if not store.exists(bid.envelope_sha256):
        report.add(f"{subject} envelope", "missing from the file store")
        return
    if not deep:
        if not store.verify(bid.envelope_sha256):
            report.add(f"{subject} envelope", "its bytes no longer match their SHA-256")
        return
    signer = x509.load_pem_x509_certificate(bid.signer_certificate.pem.encode()).public_key()
    context = bid_context(bid.tender.code, lot.code, bid.organisation.uscc, bid.version)
    try:
        with store.open(bid.envelope_sha256) as fh:
            verify_stream(fh, signer_public_key=signer, expected_context=context, expected_size=bid.envelope_size,
                          expected_sha256=bytes.fromhex(bid.envelope_sha256))
    except CryptoError as exc:
        report.add(f"{subject} envelope", str(exc))


def _opening_set(tender: Tender, rows: dict[int, LogEntry], report: Report) -> None:
    log = db.session.get(TenderLog, tender.id)
    if log is None or log.closed_at is None:
        return
    openings = [r for r in rows.values() if r.kind == "opening"]
    if not openings:
        report.add("log", "the tender was closed but its log has no opening entry")
        return
    try:
        listed = parse_log_entry(min(openings, key=lambda r: r.index).entry)["bids"]
    except CryptoError as exc:
        report.add("opening entry", str(exc))
        return
    current = db.session.execute(select(Lot.code, BidderCommitment.commitment, Bid.version, Bid.envelope_sha256)
                                 .join(Lot, Lot.id == Bid.lot_id)
                                 .join(BidderCommitment, (BidderCommitment.tender_id == Bid.tender_id)
                                       & (BidderCommitment.organisation_id == Bid.organisation_id))
                                 .where(Bid.tender_id == tender.id, Bid.is_current.is_(True))).all()
    expected = sorted((c, b, v, s) for c, b, v, s in current)
    logged = sorted((b["lot"], b["bidder"], b["bid_version"], b["envelope_sha256"]) for b in listed)
    if expected != logged:
        report.add("opening entry", f"it lists {len(logged)} bids, the database has {len(expected)} current bids "
                                    "that differ from them")


def verify_tender(tender: Tender, *, deep: bool = True) -> Report:
    """Check the tender's log, heads, receipts and envelopes; return every problem found."""
    report = Report()
    leaves, rows = _entries(tender, report)
    _heads(tender, leaves, (max(rows) + 1) if rows else 0, report)
    bids = db.session.execute(select(Bid, Lot).join(Lot, Lot.id == Bid.lot_id).where(Bid.tender_id == tender.id)
                              .order_by(Bid.id)).all()
    report.bids = len(bids)
    for bid, lot in bids:
        _bid(bid, lot, leaves, rows, deep, report)
    _opening_set(tender, rows, report)
    return report

