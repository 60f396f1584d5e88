"""Opening record models (开标记录): the record's versions, each bidder's confirmation, objections (异议).

A record's rows are frozen as JSON when it is built (straight from the decrypted bid.json forms and the
guarantee checks, never retyped) and fingerprinted with SHA-256; the PDF lives in the file store under
its SHA-256, and ``pdf_sha256`` always names the latest revision (the prepared file, then each signed
revision). Objection attachments are stored the same way.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bidding.models import Tender
from core.clock import now
from core.db import db, enum_type
from core.identity.models import Certificate, Organisation, Person

DEFAULT_CONFIRM_MINUTES = 15
MIN_CONFIRM_MINUTES, MAX_CONFIRM_MINUTES = 5, 60


class RecordStatus(enum.StrEnum):
    CONFIRMING = "confirming"    # bidders confirm or object within the window; the host answers
    ANSWERING = "answering"      # the window is over; objections still wait for the host's answer
    SIGNING = "signing"          # the PDF is prepared; the host and the supervisor sign it
    PUBLISHED = "published"      # both signed: the record is public


class ResponseKind(enum.StrEnum):
    CONFIRMED = "confirmed"      # 无异议 (signed by the bidder)
    OBJECTED = "objected"        # 有异议
    SILENT = "silent"            # no answer within the window: counts as no objection


class OpeningRecord(db.Model):
    """The opening record (开标记录) of a tender; one per tender (``version`` counts rebuilds before the window)."""

    __tablename__ = "opening_records"
    __table_args__ = (UniqueConstraint("tender_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[RecordStatus] = mapped_column(enum_type(RecordStatus, 16), default=RecordStatus.CONFIRMING)
    rows: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64))  # of the canonical JSON of ``rows``
    extras: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # draws, hand-off check, final head
    built_by_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    built_at: Mapped[datetime] = mapped_column(default=now)
    window_minutes: Mapped[int] = mapped_column(Integer, default=DEFAULT_CONFIRM_MINUTES)
    window_ends_at: Mapped[datetime]
    window_closed_at: Mapped[datetime | None]
    prepared_sha256: Mapped[str | None] = mapped_column(String(64))  # the unsigned PDF with the two fields
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))  # the latest revision
    pdf_size: Mapped[int | None]
    host_certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificates.id"))
    host_signed_at: Mapped[datetime | None]
    supervisor_certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificates.id"))
    supervisor_signed_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]

    tender: Mapped[Tender] = relationship()
    built_by: Mapped[Person] = relationship(foreign_keys=[built_by_id])
    host_certificate: Mapped[Certificate | None] = relationship(foreign_keys=[host_certificate_id])
    supervisor_certificate: Mapped[Certificate | None] = relationship(foreign_keys=[supervisor_certificate_id])
    responses: Mapped[list[RecordConfirmation]] = relationship(back_populates="record",
                                                               order_by="RecordConfirmation.id")
    objections: Mapped[list[RecordObjection]] = relationship(back_populates="record",
                                                             order_by="RecordObjection.id")


class RecordConfirmation(db.Model):
    """A bidder's response to the record: confirmed, objected, or silent at the window's end."""

    __tablename__ = "opening_record_confirmations"
    __table_args__ = (UniqueConstraint("record_id", "organisation_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("opening_records.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))  # None when silent
    kind: Mapped[ResponseKind] = mapped_column(enum_type(ResponseKind, 16))
    rows_sha256: Mapped[str] = mapped_column(String(64))  # the rows the bidder saw
    at: Mapped[datetime] = mapped_column(default=now)

    record: Mapped[OpeningRecord] = relationship(back_populates="responses")
    organisation: Mapped[Organisation] = relationship()
    person: Mapped[Person | None] = relationship()


class RecordObjection(db.Model):
    """An objection (异议) to the opening record, raised by a bidder and answered by the host (条例 §44)."""

    __tablename__ = "opening_record_objections"

    id: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("opening_records.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    text: Mapped[str] = mapped_column(Text)
    attachment_name: Mapped[str | None] = mapped_column(String(200))
    attachment_sha256: Mapped[str | None] = mapped_column(String(64))
    attachment_size: Mapped[int | None]
    raised_at: Mapped[datetime] = mapped_column(default=now)
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    answered_at: Mapped[datetime | None]

    record: Mapped[OpeningRecord] = relationship(back_populates="objections")
    organisation: Mapped[Organisation] = relationship()
    person: Mapped[Person] = relationship(foreign_keys=[person_id])
    answered_by: Mapped[Person | None] = relationship(foreign_keys=[answered_by_id])
