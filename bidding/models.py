"""Tender models: tender (招标项目), lots (标段), documents, amendments (澄清/修改), Q&A, objections (异议)."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import now
from core.db import db, enum_type
from core.identity.models import Organisation, Person


class Regime(enum.StrEnum):
    """工程建设 (works) or 政府采购 (government procurement)."""

    WORKS = "works"
    GOVERNMENT_PROCUREMENT = "gp"


class ProcurementCategory(enum.StrEnum):
    WORKS = "works"
    GOODS = "goods"
    SERVICES = "services"


class TenderStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    OPENING = "opening"            # bidding closed / opening (开标)
    EVALUATION = "evaluation"      # 评标
    PUBLICITY = "publicity"        # 中标候选人公示
    AWARDED = "awarded"            # 定标
    FAILED = "failed"              # 流标
    CANCELLED = "cancelled"        # 终止


class DecryptionMode(enum.StrEnum):
    BIDDER = "bidder"
    CUSTODIANS = "custodians"
    BIDDER_THEN_CUSTODIANS = "bidder_then_custodians"
    DOUBLE_ENVELOPE = "double_envelope"



class Tender(db.Model):
    """A tender (招标项目) with one or more lots, its periods and the settings later stages use."""

    __tablename__ = "tenders"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    regime: Mapped[Regime] = mapped_column(enum_type(Regime))
    category: Mapped[ProcurementCategory] = mapped_column(enum_type(ProcurementCategory))
    is_mandatory: Mapped[bool] = mapped_column(default=True)  # 依法必须招标
    region: Mapped[str] = mapped_column(String(12), default="CN")
    status: Mapped[TenderStatus] = mapped_column(enum_type(TenderStatus), default=TenderStatus.DRAFT, index=True)

    tenderer_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))

    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    estimated_price: Mapped[Decimal]
    ceiling_price: Mapped[Decimal | None]  # 最高投标限价

    documents_from_at: Mapped[datetime | None]
    documents_until_at: Mapped[datetime | None]
    question_deadline_at: Mapped[datetime | None]
    bid_deadline_at: Mapped[datetime | None]  # = opening time (开标时间)
    bid_validity_days: Mapped[int] = mapped_column(Integer, default=90)

    evaluation_method: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    guarantee_policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    decryption_mode: Mapped[DecryptionMode] = mapped_column(enum_type(DecryptionMode), default=DecryptionMode.BIDDER)
    custodian_threshold: Mapped[int | None]

    rules_version: Mapped[str | None] = mapped_column(String(40))
    # the tender opening key (开标密钥), made at publication (bidding.opening_key); its private half is
    # split among the custodians and never stored
    opening_public_key_pem: Mapped[str | None] = mapped_column(Text)
    opening_key_id: Mapped[str | None] = mapped_column(String(64))  # hex SHA-256 of the key's SPKI DER
    is_suspended: Mapped[bool] = mapped_column(default=False)  # pending objections or a supervisor's hold
    # a supervisor's order to suspend the procedure (条例 §62), whatever its stage; lifted only by a supervisor
    hold_reason: Mapped[str | None] = mapped_column(Text)
    held_at: Mapped[datetime | None]
    held_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    published_at: Mapped[datetime | None] = mapped_column(index=True)
    cancelled_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now, onupdate=now)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    @property
    def opening_at(self) -> datetime | None:
        """Opening time (开标时间): by law the same instant as the bid deadline."""
        return self.bid_deadline_at

    def is_managed_by(self, organisation_id: int | None) -> bool:
        """True when ``organisation_id`` is this tender's tenderer or agency."""
        return organisation_id is not None and organisation_id in (self.tenderer_id, self.agency_id)

    tenderer: Mapped[Organisation] = relationship(foreign_keys=[tenderer_id])
    agency: Mapped[Organisation | None] = relationship(foreign_keys=[agency_id])
    created_by: Mapped[Person] = relationship(foreign_keys=[created_by_id])
    lots: Mapped[list[Lot]] = relationship(back_populates="tender", order_by="Lot.number",
                                           cascade="all, delete-orphan")
    documents: Mapped[list[TenderDocument]] = relationship(back_populates="tender",
                                                           order_by="TenderDocument.id",
                                                           cascade="all, delete-orphan")
    amendments: Mapped[list[Amendment]] = relationship(back_populates="tender", order_by="Amendment.number",
                                                       cascade="all, delete-orphan")
    questions: Mapped[list[Question]] = relationship(back_populates="tender", order_by="Question.id",
                                                     cascade="all, delete-orphan")
    objections: Mapped[list[Objection]] = relationship(back_populates="tender", order_by="Objection.id",
                                                       cascade="all, delete-orphan")
    custodians: Mapped[list[TenderCustodian]] = relationship(back_populates="tender",
                                                             order_by="TenderCustodian.position",
                                                             cascade="all, delete-orphan")


class Lot(db.Model):
    """A lot (标段) of a tender; bids, guarantees and evaluation are per lot."""

    __tablename__ = "lots"
    __table_args__ = (UniqueConstraint("tender_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    code: Mapped[str] = mapped_column(String(50))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    estimated_price: Mapped[Decimal]
    ceiling_price: Mapped[Decimal | None]
    bond_amount: Mapped[Decimal | None]  # 投标保证金 required for this lot
    max_bid_bytes: Mapped[int | None] = mapped_column(BigInteger)  # envelope size limit; None: platform default

    tender: Mapped[Tender] = relationship(back_populates="lots")


class TenderDocument(db.Model):
    """A file published with the tender or an amendment; content-addressed by SHA-256."""

    __tablename__ = "tender_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"), index=True)
    amendment_id: Mapped[int | None] = mapped_column(ForeignKey("amendments.id"))
    kind: Mapped[str] = mapped_column(String(32), default="tenderNotice")
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100), default="application/octet-stream")
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    uploaded_at: Mapped[datetime] = mapped_column(default=now)
    # None while staged: a draft's files until publication, a published tender's until an amendment issues them
    published_at: Mapped[datetime | None]
    is_withdrawn: Mapped[bool] = mapped_column(default=False)

    tender: Mapped[Tender] = relationship(back_populates="documents")


class Amendment(db.Model):
    """A clarification or amendment (澄清/修改) published after the tender, notified to downloaders."""

    __tablename__ = "amendments"
    __table_args__ = (UniqueConstraint("tender_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    summary: Mapped[str] = mapped_column(Text)
    affects_bids: Mapped[bool] = mapped_column(default=True)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    previous_deadline_at: Mapped[datetime | None]
    new_deadline_at: Mapped[datetime | None]
    created_by_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    published_at: Mapped[datetime] = mapped_column(default=now)

    tender: Mapped[Tender] = relationship(back_populates="amendments")
    documents: Mapped[list[TenderDocument]] = relationship()


class Question(db.Model):
    """A bidder's question (提问); the answer is published to all, the asker stays anonymous."""

    __tablename__ = "questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"), index=True)
    asker_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    asker_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    text: Mapped[str] = mapped_column(Text)
    asked_at: Mapped[datetime] = mapped_column(default=now)
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    answered_at: Mapped[datetime | None]

    tender: Mapped[Tender] = relationship(back_populates="questions")


class ObjectionStatus(enum.StrEnum):
    PENDING = "pending"
    ANSWERED = "answered"
    WITHDRAWN = "withdrawn"


class Objection(db.Model):
    """An objection (异议) to the tender documents; answered within the legal period, suspends meanwhile."""

    __tablename__ = "objections"

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"), index=True)
    raised_by_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    text: Mapped[str] = mapped_column(Text)
    raised_at: Mapped[datetime] = mapped_column(default=now)
    answer_due_at: Mapped[datetime]
    status: Mapped[ObjectionStatus] = mapped_column(enum_type(ObjectionStatus), default=ObjectionStatus.PENDING)
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    answered_at: Mapped[datetime | None]

    tender: Mapped[Tender] = relationship(back_populates="objections")
    organisation: Mapped[Organisation] = relationship()


class TenderCustodian(db.Model):
    """A key custodian (密钥保管人) named in the tender for the opening key."""

    __tablename__ = "tender_custodians"
    __table_args__ = (UniqueConstraint("tender_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    position: Mapped[int]

    tender: Mapped[Tender] = relationship(back_populates="custodians")
    person: Mapped[Person] = relationship()


class DocumentDownload(db.Model):
    """First download of a tender's documents by an organisation: who must be notified of amendments."""

    __tablename__ = "document_downloads"
    __table_args__ = (UniqueConstraint("tender_id", "organisation_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    first_at: Mapped[datetime] = mapped_column(default=now)
