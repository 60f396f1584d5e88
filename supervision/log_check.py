"""A tender's transparency log checked on demand (透明日志核验): entries, leaf hashes, signed heads.

Recomputes every entry's leaf hash, checks the indexes run 0..n-1 without a gap, and for every signed
tree head kept: its signature (the platform's log key), and its root against the root recomputed from
the first ``tree_size`` entries — so a changed, removed or reordered entry, or a head signed over
another history, is reported with where it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from bidding.receipts import log_key
from bidding.sealed_models import LogEntry, TreeHead
from core.db import db
from crypto import merkle
from crypto.errors import CryptoError
from crypto.receipt import parse_log_entry, verify_tree_head


@dataclass
class LogVerdict:
    ok: bool
    size: int
    heads: int
    problems: list[str] = field(default_factory=list)


def verify_log(tender_id: int) -> LogVerdict:
    rows = list(db.session.scalars(select(LogEntry).where(LogEntry.tender_id == tender_id).order_by(LogEntry.index)))
    problems: list[str] = []
    leaves: list[bytes] = []
    for expected, row in enumerate(rows):
        if row.index != expected:
            problems.append(f"entry {expected} is missing (the next stored index is {row.index})")
            break
        leaf = merkle.leaf_hash(bytes(row.entry))
        if leaf.hex() != row.leaf_hash:
            problems.append(f"entry {row.index}: its bytes do not hash to the stored leaf hash")
        try:
            parse_log_entry(bytes(row.entry))
        except CryptoError as exc:
            problems.append(f"entry {row.index}: not a valid log entry ({exc})")
        leaves.append(leaf)
    public = log_key().public_key()
    heads = list(db.session.scalars(select(TreeHead).where(TreeHead.tender_id == tender_id)
                                    .order_by(TreeHead.tree_size)))
    for head in heads:
        try:
            signed = verify_tree_head(head.document, public)
        except CryptoError as exc:
            problems.append(f"tree head of size {head.tree_size}: the signature does not verify ({exc})")
            continue
        if signed.tree_size != head.tree_size or signed.root_hash.hex() != head.root_hash:
            problems.append(f"tree head of size {head.tree_size}: the signed body differs from the stored head")
        if head.tree_size > len(leaves):
            problems.append(f"tree head of size {head.tree_size}: the log holds only {len(leaves)} entries")
            continue
        if merkle.root_hash(leaves[:head.tree_size]).hex() != head.root_hash:
            problems.append(f"tree head of size {head.tree_size}: the entries do not give its root hash")
    return LogVerdict(ok=not problems, size=len(rows), heads=len(heads), problems=problems)


def search_entries(tender_id: int, kind: str | None = None, text: str | None = None,
                   limit: int = 500) -> list[tuple[int, str, dict]]:
    """(index, kind, parsed entry) of the tender's log, filtered by kind and by a substring of the entry."""
    stmt = select(LogEntry).where(LogEntry.tender_id == tender_id).order_by(LogEntry.index)
    if kind:
        stmt = stmt.where(LogEntry.kind == kind)
    out = []
    needle = (text or "").strip().lower()
    for row in db.session.scalars(stmt):
        try:
            data = parse_log_entry(bytes(row.entry))
        except CryptoError as exc:  # a damaged entry is listed as such (verification names it too)
            data = {"unreadable": str(exc), "bytes": bytes(row.entry)[:120].hex()}
        if needle and needle not in str(data).lower():
            continue
        out.append((row.index, row.kind, data))
        if len(out) >= limit:
            break
    return out
