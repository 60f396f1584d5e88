"""The per-tender transparency log (透明日志): an append-only Merkle tree of bid and key events.

Entries are the canonical encodings of :mod:`crypto.receipt` (submission, replacement, withdrawal,
key-event, opening); leaf hash ``H(0x00 || entry)``, tree heads per RFC 6962 (:mod:`crypto.merkle`),
signed by the platform's log key (:mod:`bidding.receipts`). Callers append while holding the tender's
row lock (:func:`bidding.sealed_checks.lock_tender`), so the order of entries is the order of the
locked transactions and one tender's log never forks.

Bidders appear only as commitments ``SHA-256("ebid/bidder-commitment/v1\\n" || salt || USCC)`` with a
random salt per (tender, bidder); the salts are published at the opening. A bidder's receipt shows its
log index and tree size; so that these numbers do not tell how many others have bid, every bid event
is preceded by 0..N padding entries (key-event ``padding``) and publication adds 0..M of them.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bidding.models import Tender
from bidding.receipts import epoch_ms, key_id_hex, log_key
from bidding.sealed_models import BidderCommitment, LogEntry, TenderLog, TreeHead
from core.db import db
from crypto import merkle
from crypto.receipt import SignedDocument, log_entry, parse_log_entry, sign_tree_head

COMMITMENT_DOMAIN = b"ebid/bidder-commitment/v1\n"
DEFAULT_PADDING = (8, 2)  # at most this many padding entries at publication, and before each bid event


def log_id_for(tender: Tender) -> str:
    return f"ebid/tender/{tender.code}"


def open_log(tender: Tender) -> TenderLog:
    """The tender's log, started if it does not exist yet."""
    log = db.session.get(TenderLog, tender.id)
    if log is None:
        log = TenderLog(tender_id=tender.id, log_id=log_id_for(tender), size=0, closing={})
        db.session.add(log)
        db.session.flush()
    return log


def commitment_of(salt_hex: str, uscc: str) -> str:
    """The public stand-in for a bidder: hex SHA-256 of the domain, the salt and the USCC."""
    return hashlib.sha256(COMMITMENT_DOMAIN + bytes.fromhex(salt_hex) + uscc.encode("ascii")).hexdigest()


def commitment_for(tender: Tender, organisation_id: int, uscc: str) -> BidderCommitment:
    """The organisation's commitment in this tender, made on its first bid (race-safe: first insert wins)."""
    def find() -> BidderCommitment | None:
        return db.session.scalar(select(BidderCommitment).where(BidderCommitment.tender_id == tender.id,
                                                                BidderCommitment.organisation_id == organisation_id))

    row = find()
    if row is None:
        salt = secrets.token_hex(16)
        insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
        row = db.session.scalar(insert(BidderCommitment).values(
            tender_id=tender.id, organisation_id=organisation_id, salt=salt,
            commitment=commitment_of(salt, uscc)).on_conflict_do_nothing().returning(BidderCommitment))
        row = row or find()  # another transaction's insert won
    return row


def detached_commitment(tender: Tender, organisation_id: int, uscc: str) -> BidderCommitment:
    """:func:`commitment_for` as a copy in no session: read after a commit, or by another thread, without a read."""
    row = commitment_for(tender, organisation_id, uscc)
    return BidderCommitment(id=row.id, tender_id=row.tender_id, organisation_id=row.organisation_id, salt=row.salt,
                            commitment=row.commitment)


def _frontier(log: TenderLog) -> list[bytes]:
    """The log's compact range (one hash per perfect subtree), rebuilt from the leaves if not kept yet."""
    if log.frontier is None:
        frontier: list[bytes] = []
        for size, leaf in enumerate(leaf_hashes(log.tender_id, log.size)):
            frontier = merkle.frontier_append(frontier, size, leaf)
        return frontier
    raw = bytes(log.frontier)
    return [raw[i:i + merkle.HASH_SIZE] for i in range(0, len(raw), merkle.HASH_SIZE)]


def frontier(tender: Tender) -> list[bytes]:
    """The log's compact range as it is now in this transaction (empty before the first entry)."""
    log = db.session.get(TenderLog, tender.id)
    return _frontier(log) if log is not None else []


def append(tender: Tender, entry: bytes) -> int:
    """Append canonical entry bytes (checked by crypto.receipt); return the leaf index.

    The entry is written with the caller's next flush; the log's size and compact range move on now,
    so that :func:`sign_head` needs no read of earlier leaves.
    """
    body = parse_log_entry(entry)
    log = open_log(tender)
    index = log.size
    leaf = merkle.leaf_hash(entry)
    frontier = merkle.frontier_append(_frontier(log), index, leaf)
    db.session.add(LogEntry(tender_id=tender.id, index=index, kind=body["kind"], entry=bytes(entry),
                            leaf_hash=leaf.hex()))
    log.size, log.frontier = index + 1, b"".join(frontier)
    return index


def append_event(tender: Tender, kind: str, **fields) -> int:
    """Build an entry of ``kind`` for ``tender`` and append it."""
    return append(tender, log_entry(kind, tender=tender.code, **fields))


def _padding_limits() -> tuple[int, int]:
    value = current_app.extensions["ebid.settings"].extra.get("log_padding", DEFAULT_PADDING)
    return int(value[0]), int(value[1])


def pad(tender: Tender, at: datetime, *, initial: bool = False) -> int:
    """Append a random number of padding entries (so indexes do not count the bids); return how many."""
    limit = _padding_limits()[0 if initial else 1]
    count = secrets.randbelow(limit + 1) if limit > 0 else 0
    kid = key_id_hex(log_key().public_key())
    for _ in range(count):
        append_event(tender, "key-event", event="padding", key_id=kid, at_ms=epoch_ms(at))
    return count


def leaf_hashes(tender_id: int, size: int | None = None) -> list[bytes]:
    stmt = select(LogEntry.leaf_hash).where(LogEntry.tender_id == tender_id).order_by(LogEntry.index)
    if size is not None:
        stmt = stmt.where(LogEntry.index < size)
    return [bytes.fromhex(h) for h in db.session.scalars(stmt)]


def sign_head(tender: Tender, at: datetime, *, final: bool = False,
              appended: bool = False) -> tuple[TreeHead, SignedDocument]:
    """Sign (and store) the head of the log as it is now; an existing head of that size is reused.

    ``appended``: the caller appended in this transaction, under the tender lock, so no head of this
    size can exist yet and the lookup is skipped.
    """
    log = open_log(tender)
    if not appended:
        existing = head_at(tender.id, log.size)
        if existing is not None and (existing.is_final or not final):
            return existing, SignedDocument.from_json(existing.document)
    root = merkle.frontier_root(_frontier(log))
    doc = sign_tree_head(log_key(), log_id=log.log_id, tree_size=log.size, root_hash=root, timestamp_ms=epoch_ms(at))
    head = TreeHead(tender_id=tender.id, tree_size=log.size, root_hash=root.hex(), timestamp_ms=epoch_ms(at),
                    document=doc.to_json().decode(), is_final=final)
    db.session.add(head)
    return head, doc


def head_at(tender_id: int, size: int) -> TreeHead | None:
    return db.session.scalar(select(TreeHead).where(TreeHead.tender_id == tender_id, TreeHead.tree_size == size))


def final_head(tender_id: int) -> TreeHead | None:
    return db.session.scalar(select(TreeHead).where(TreeHead.tender_id == tender_id, TreeHead.is_final.is_(True))
                             .order_by(TreeHead.tree_size.desc()).limit(1))


def latest_head(tender_id: int) -> TreeHead | None:
    return db.session.scalar(select(TreeHead).where(TreeHead.tender_id == tender_id)
                             .order_by(TreeHead.tree_size.desc()).limit(1))


def size_of(tender_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(LogEntry).where(LogEntry.tender_id == tender_id)) or 0


def inclusion_proof(tender_id: int, index: int, size: int) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of the first ``size`` entries."""
    return merkle.MerkleTree.from_leaf_hashes(leaf_hashes(tender_id, size)).inclusion_proof(index, size)


def consistency_proof(tender_id: int, first: int, second: int) -> list[bytes]:
    """Proof that the tree of ``first`` entries is a prefix of the tree of ``second`` entries."""
    return merkle.MerkleTree.from_leaf_hashes(leaf_hashes(tender_id, second)).consistency_proof(first, second)


def entries(tender_id: int, start: int, end: int) -> list[LogEntry]:
    return list(db.session.scalars(select(LogEntry).where(LogEntry.tender_id == tender_id, LogEntry.index >= start,
                                                          LogEntry.index < end).order_by(LogEntry.index)))


def entry_at(tender_id: int, index: int) -> LogEntry | None:
    return db.session.scalar(select(LogEntry).where(LogEntry.tender_id == tender_id, LogEntry.index == index))
