"""Sealed-bid models: upload sessions, bid versions (投标文件), opening-key shares, the transparency log.

Nothing here can open a bid: envelopes are ciphertext in the file store, the tender opening key's private
half exists only as shares encrypted to the custodians' certificates, and the log holds hashes and
commitments. Row ids are never shown to bidders (they would hint at how many bids exist); uploads and
bids carry random public ids instead.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    inspect,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bidding.models import Lot, Tender
from core.clock import now
from core.db import database_guard, db, enum_type
from core.identity.models import Certificate, Organisation, Person


class UploadStatus(enum.StrEnum):
    OPEN = "open"                # accepting chunks
    FINALIZING = "finalizing"    # bytes complete, being checked; no more chunks
    FINALIZED = "finalized"      # became a bid version
    FAILED = "failed"            # refused at finalize (reason stored); start a new upload
    CANCELLED = "cancelled"      # abandoned by the bidder
    WITHDRAWN = "withdrawn"      # unfinished at the deadline: deemed withdrawn (20号令 §27)


class BidUpload(db.Model):
    """A resumable upload session (上传会话) of one sealed envelope; the bytes wait in the spool folder."""

    __tablename__ = "bid_uploads"
    __table_args__ = (Index("ix_bid_uploads_open", "tender_id", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random, shown to the bidder
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"))
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id", ondelete="CASCADE"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    declared_size: Mapped[int] = mapped_column(BigInteger)
    declared_sha256: Mapped[str] = mapped_column(String(64))
    received_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[UploadStatus] = mapped_column(enum_type(UploadStatus, 16), default=UploadStatus.OPEN)
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now)
    finished_at: Mapped[datetime | None]
    failure_code: Mapped[str | None] = mapped_column(String(40))
    failure_message: Mapped[str | None] = mapped_column(Text)
    bid_id: Mapped[int | None] = mapped_column(ForeignKey("bids.id"))

    tender: Mapped[Tender] = relationship()
    lot: Mapped[Lot] = relationship()
    organisation: Mapped[Organisation] = relationship()
    bid: Mapped[Bid | None] = relationship()


class Bid(db.Model):
    """One version of an organisation's sealed bid (投标文件) for a lot; at most one is current."""

    __tablename__ = "bids"
    __table_args__ = (
        UniqueConstraint("tender_id", "lot_id", "organisation_id", "version"),
        # a replacement can never leave two current bids, whatever the application does
        Index("uq_bids_current", "lot_id", "organisation_id", unique=True,
              sqlite_where=text("is_current = 1"), postgresql_where=text("is_current")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id", ondelete="CASCADE"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    submitted_by_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    signer_certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"))
    version: Mapped[int] = mapped_column(Integer)
    envelope_sha256: Mapped[str] = mapped_column(String(64))
    envelope_size: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[datetime]
    is_current: Mapped[bool] = mapped_column(default=True)
    replaced_at: Mapped[datetime | None]
    withdrawn_at: Mapped[datetime | None]
    log_index: Mapped[int] = mapped_column(Integer)
    head_size: Mapped[int] = mapped_column(Integer)  # size of the tree head in the receipt
    receipt: Mapped[str] = mapped_column(Text)  # canonical JSON of the signed receipt
    withdrawal_index: Mapped[int | None] = mapped_column(Integer)
    withdrawal_head_size: Mapped[int | None] = mapped_column(Integer)

    tender: Mapped[Tender] = relationship()
    lot: Mapped[Lot] = relationship()
    organisation: Mapped[Organisation] = relationship()
    signer_certificate: Mapped[Certificate] = relationship()

    @property
    def state(self) -> str:
        if self.is_current:
            return "current"
        return "withdrawn" if self.withdrawn_at is not None else "replaced"


class BidderCommitment(db.Model):
    """The salted hash that stands for a bidder in a tender's public log until the opening."""

    __tablename__ = "bidder_commitments"
    __table_args__ = (UniqueConstraint("tender_id", "organisation_id"), UniqueConstraint("tender_id", "commitment"))

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    salt: Mapped[str] = mapped_column(String(32))  # hex, published at the opening
    commitment: Mapped[str] = mapped_column(String(64))

    organisation: Mapped[Organisation] = relationship()


class OpeningKeyShare(db.Model):
    """A custodian's share (密钥分片) of the tender opening key, encrypted to the custodian's certificate."""

    __tablename__ = "opening_key_shares"
    __table_args__ = (UniqueConstraint("tender_id", "share_index"), UniqueConstraint("tender_id", "custodian_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"), index=True)
    custodian_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"))
    share_index: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer)
    encrypted_share: Mapped[bytes] = mapped_column(LargeBinary)
    # SHA-256 of the share's bytes: lets the opening name a wrong released share at once (bidding.opening_decrypt)
    share_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=now)

    custodian: Mapped[Person] = relationship()
    certificate: Mapped[Certificate] = relationship()


class TenderLog(db.Model):
    """A tender's transparency log (透明日志): its size, and what closing at the deadline established."""

    __tablename__ = "tender_logs"

    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"), primary_key=True)
    log_id: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column(Integer, default=0)
    # the Merkle tree's compact range: the roots of its perfect subtrees, largest first, 32 bytes each
    frontier: Mapped[bytes | None] = mapped_column(LargeBinary)
    closed_at: Mapped[datetime | None]  # submissions locked (截止); set once, never cleared
    closing: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # counts per lot, outcome


class LogEntry(db.Model):
    """One leaf of a tender's log: the canonical entry bytes (crypto.receipt) and their leaf hash."""

    __tablename__ = "log_entries"
    __table_args__ = (UniqueConstraint("tender_id", "index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    entry: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=now)


class TreeHead(db.Model):
    """A signed tree head of a tender's log (the canonical JSON the log key signed)."""

    __tablename__ = "tree_heads"
    __table_args__ = (UniqueConstraint("tender_id", "tree_size"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"), index=True)
    tree_size: Mapped[int] = mapped_column(Integer)
    root_hash: Mapped[str] = mapped_column(String(64))
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)
    document: Mapped[str] = mapped_column(Text)
    is_final: Mapped[bool] = mapped_column(default=False)  # the head published at the deadline


APPEND_ONLY = ("log_entries", "tree_heads")


def _pg_guard(table: str) -> tuple[str, ...]:
    return (f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION ebid_sealed_append_only()")


_PG_FUNCTION = """
    CREATE OR REPLACE FUNCTION ebid_sealed_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = '42501';
    END
    $$
"""


def _sqlite_guard(table: str) -> tuple[str, ...]:
    return tuple(f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
                 f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op} refused'); END"
                 for op in ("UPDATE", "DELETE"))


@database_guard
def install_log_guards(engine: Engine) -> None:
    """Refuse UPDATE and DELETE on the log's entries and heads in the database itself (idempotent)."""
    tables = [t for t in APPEND_ONLY if inspect(engine).has_table(t)]
    if not tables:
        return
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(_PG_FUNCTION))
            statements = [s for t in tables for s in _pg_guard(t)]
        elif engine.dialect.name == "sqlite":
            statements = [s for t in tables for s in _sqlite_guard(t)]
        else:
            raise RuntimeError(f"no append-only guard for the {engine.dialect.name} database")
        for statement in statements:
            conn.execute(text(statement))
