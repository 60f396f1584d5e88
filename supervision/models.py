"""Supervision models: complaints (投诉) and the stored runs of the collusion screens (串通投标预警).

A :class:`Complaint` is a bidder's complaint to the supervisory authority about a procedure it first
objected to (条例 §60: objections to the documents, the opening or the result must come first). The
authority accepts or rejects it within 3 working days and decides within 30 working days of accepting
(条例 §61); the decision is published. A :class:`ScreenRun` keeps what the screens found for a tender
at one moment, with the digest of the facts they looked at, so a warning stays explainable later.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bidding.models import Tender
from core.clock import now
from core.db import db, enum_type
from core.identity.models import Organisation, Person


class ComplaintStatus(enum.StrEnum):
    FILED = "filed"          # waiting for acceptance (3 working days)
    ACCEPTED = "accepted"    # being handled (decision within 30 working days)
    REJECTED = "rejected"    # not accepted, with the reason
    DECIDED = "decided"      # decision published


class ObjectionKind(enum.StrEnum):
    DOCUMENTS = "documents"  # 异议 on the tender documents (条例 §22)
    OPENING = "opening"      # 异议 on the opening (条例 §44)
    RESULT = "result"        # 异议 on the evaluation result (条例 §54)


class Complaint(db.Model):
    """A complaint (投诉) to the supervisors, its acceptance and its published decision."""

    __tablename__ = "complaints"

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    objection_kind: Mapped[ObjectionKind] = mapped_column(enum_type(ObjectionKind, 16))
    objection_id: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    attachment_name: Mapped[str | None] = mapped_column(String(200))
    attachment_sha256: Mapped[str | None] = mapped_column(String(64))
    attachment_size: Mapped[int | None]
    filed_at: Mapped[datetime] = mapped_column(default=now)
    accept_due: Mapped[date] = mapped_column(Date)          # 3 working days after filing
    status: Mapped[ComplaintStatus] = mapped_column(enum_type(ComplaintStatus, 16), default=ComplaintStatus.FILED,
                                                    index=True)
    acceptance_note: Mapped[str | None] = mapped_column(Text)  # why rejected, or what will be examined
    accepted_at: Mapped[datetime | None]
    decide_due: Mapped[date | None] = mapped_column(Date)   # 30 working days after acceptance
    decision: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(16))  # upheld | dismissed
    decided_at: Mapped[datetime | None]
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))

    tender: Mapped[Tender] = relationship()
    organisation: Mapped[Organisation] = relationship()
    person: Mapped[Person] = relationship(foreign_keys=[person_id])


class ScreenRun(db.Model):
    """One run of the collusion screens over a tender's bids: the findings and the digest of the facts."""

    __tablename__ = "screen_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=now)
    facts_sha256: Mapped[str] = mapped_column(String(64))
    bids: Mapped[int] = mapped_column(Integer)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    trigger: Mapped[str] = mapped_column(String(16))  # opening | manual
