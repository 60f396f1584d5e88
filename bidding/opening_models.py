"""Online opening models (不见面开标): the session, its people, check-ins, each bid's opening, draws.

Nothing here holds a bid's content before its decryption succeeded: a :class:`BidOpening` carries only
status until then. A content key (or, in double-envelope mode, the bidder's half) waits in
``pending_key`` only between its acceptance and the commit of the decrypted plaintext, and is cleared
in that same commit; released custodian shares wait in :class:`ShareRelease` only until the opening key
is rebuilt, then they are cleared. Neither ever reaches a log or the audit trail.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bidding.models import Lot, Tender
from bidding.sealed_models import Bid
from core.clock import now
from core.db import db, enum_type
from core.identity.models import Certificate, Organisation, Person

DEFAULT_WINDOW_MINUTES = 30
MIN_WINDOW_MINUTES, MAX_WINDOW_MINUTES = 15, 60


class OpeningPhase(enum.StrEnum):
    CHECKIN = "checkin"          # 签到: before the host starts decryption
    DECRYPTING = "decrypting"    # 解密: the decryption window runs
    DECRYPTED = "decrypted"      # every bid decrypted or failed (causes may still be undecided)
    RECORD = "record"  # 唱标 / 开标记录
    CLOSED = "closed"            # record signed and published; hand-off to evaluation


class ParticipantRole(enum.StrEnum):
    HOST = "host"                # 主持人
    SUPERVISOR = "supervisor"    # 监督人


class BidOpeningStatus(enum.StrEnum):
    PENDING = "pending"          # not decrypted yet (a key may be waiting in pending_key)
    DECRYPTED = "decrypted"
    FAILED = "failed"


class DecryptMethod(enum.StrEnum):
    BIDDER = "bidder"            # the bidder sent the unwrapped content key
    CUSTODIANS = "custodians"    # the rebuilt opening key unwrapped it
    BOTH = "both"                # double envelope: bidder half XOR custodian half


class FailureCause(enum.StrEnum):
    BIDDER = "bidder"
    PLATFORM = "platform"
    CA = "ca"
    NETWORK = "network"
    UNKNOWN = "unknown"


class LegalOutcome(enum.StrEnum):
    REVOKED = "revoked"          # 撤销: failure caused by the bidder (20号令 §31)
    WITHDRAWN = "withdrawn"      # 撤回: failure caused by anyone else


class OpeningSession(db.Model):
    """A tender's opening session (开标会): phase, decryption window, who started it."""

    __tablename__ = "opening_sessions"

    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"), primary_key=True)
    phase: Mapped[OpeningPhase] = mapped_column(enum_type(OpeningPhase, 16), default=OpeningPhase.CHECKIN)
    window_minutes: Mapped[int] = mapped_column(Integer, default=DEFAULT_WINDOW_MINUTES)
    decryption_started_at: Mapped[datetime | None]
    decryption_deadline: Mapped[datetime | None]
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    window_closed_at: Mapped[datetime | None]  # the window's end was processed (fallback / failures)
    key_rebuilt_at: Mapped[datetime | None]  # custodians' shares rebuilt the opening key (then wiped)
    decrypted_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=now)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    tender: Mapped[Tender] = relationship()


class OpeningParticipant(db.Model):
    """A host (主持人) or supervisor (监督人) named for a tender's opening by its tenderer or agency."""

    __tablename__ = "opening_participants"
    __table_args__ = (UniqueConstraint("tender_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    role: Mapped[ParticipantRole] = mapped_column(enum_type(ParticipantRole, 16))
    named_by_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    named_at: Mapped[datetime] = mapped_column(default=now)

    person: Mapped[Person] = relationship(foreign_keys=[person_id])


class CheckIn(db.Model):
    """A bidder's check-in (签到): the organisation, the person, their certificate, when and from where."""

    __tablename__ = "opening_checkins"
    __table_args__ = (UniqueConstraint("tender_id", "organisation_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"))
    at: Mapped[datetime] = mapped_column(default=now)
    remote_addr: Mapped[str | None] = mapped_column(String(64))

    organisation: Mapped[Organisation] = relationship()
    person: Mapped[Person] = relationship()
    certificate: Mapped[Certificate] = relationship()


class BidOpening(db.Model):
    """The opening of one current bid: status, how it was opened, or why it failed and what that means."""

    __tablename__ = "bid_openings"

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"), index=True)
    bid_id: Mapped[int] = mapped_column(ForeignKey("bids.id"), unique=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    status: Mapped[BidOpeningStatus] = mapped_column(enum_type(BidOpeningStatus, 16), default=BidOpeningStatus.PENDING,
                                                     index=True)
    method: Mapped[DecryptMethod | None] = mapped_column(enum_type(DecryptMethod, 16))
    # transient secret: the accepted content key (or the bidder's half in double-envelope mode) until
    # the plaintext is stored; cleared in the same commit that marks the bid decrypted or failed
    pending_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    pending_method: Mapped[DecryptMethod | None] = mapped_column(enum_type(DecryptMethod, 16))
    # double envelope (transient too): the bidder's half and the half the rebuilt opening key unwrapped
    bidder_part: Mapped[bytes | None] = mapped_column(LargeBinary)
    tender_part: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_sent_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)  # the last refusal (wrong key, bad bid.json...)
    failed_at: Mapped[datetime | None]
    failure_cause: Mapped[FailureCause | None] = mapped_column(enum_type(FailureCause, 16))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    failure_evidence: Mapped[str | None] = mapped_column(Text)
    cause_votes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # {"host": {...}, "supervisor": {...}}
    cause_decided_at: Mapped[datetime | None]
    legal_outcome: Mapped[LegalOutcome | None] = mapped_column(enum_type(LegalOutcome, 16))
    plaintext_sha256: Mapped[str | None] = mapped_column(String(64))  # storage key of the bid ZIP
    plaintext_size: Mapped[int | None]
    form: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # bid.json's opening-form data (开标一览表)
    decrypted_at: Mapped[datetime | None]

    bid: Mapped[Bid] = relationship()
    lot: Mapped[Lot] = relationship()
    organisation: Mapped[Organisation] = relationship()


class ShareRelease(db.Model):
    """A custodian's released share of the opening key, held only until the key is rebuilt."""

    __tablename__ = "opening_share_releases"
    __table_args__ = (UniqueConstraint("tender_id", "custodian_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"), index=True)
    custodian_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    share_index: Mapped[int] = mapped_column(Integer)
    share: Mapped[bytes | None] = mapped_column(LargeBinary)  # cleared once the key is rebuilt
    released_at: Mapped[datetime] = mapped_column(default=now)
    used: Mapped[bool] = mapped_column(default=False)

    custodian: Mapped[Person] = relationship()


class Announcement(db.Model):
    """An announcement in the hall (公告), kept so that reconnecting clients get them all."""

    __tablename__ = "opening_announcements"

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)  # English source text; ``params`` fill its placeholders
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(default=now)


class RandomDraw(db.Model):
    """A public draw of a random parameter (随机参数, e.g. the downward coefficient K) from a committed seed."""

    __tablename__ = "opening_draws"
    __table_args__ = (UniqueConstraint("tender_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    choices: Mapped[list[str]] = mapped_column(JSON)  # the set fixed in the tender, as decimal strings
    commitment: Mapped[str] = mapped_column(String(64))  # hex SHA-256(seed)
    commit_index: Mapped[int] = mapped_column(Integer)
    committed_at: Mapped[datetime] = mapped_column(default=now)
    seed: Mapped[str | None] = mapped_column(String(64))  # hex, revealed at the draw
    result: Mapped[str | None] = mapped_column(String(40))
    reveal_index: Mapped[int | None] = mapped_column(Integer)
    drawn_at: Mapped[datetime | None]
    drawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
