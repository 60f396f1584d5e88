"""Results models (评标结果): committee decisions, the computed result, the signed report, publicity, award.

* :class:`CommitteeDecision`: what the committee decides after scoring and before completing: each
  abnormally low bid (异常低价) accepted or rejected as below cost after its written explanation, and
  whether to go on when fewer than 3 bids stay valid (DOMAIN §1.3, §2.6).
* :class:`Dissent`: a member's written dissent (不同意见), printed in the report.
* :class:`EvaluationResult`: the result computed by the tender's method (``evaluation.methods``) when the
  chair completes; frozen JSON with the digest of its inputs.
* :class:`EvaluationReport` and :class:`ReportSignature`: the report PDF (评标报告) and each member's PAdES
  signature; ``pdf_sha256`` names the latest revision in the file store.
* :class:`Publicity`, :class:`ResultObjection`: the candidates' publicity (中标候选人公示) and objections
  (异议) raised during it; :class:`Award`: the award (定标 / 中标通知) per lot.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bidding.models import Lot, Tender
from core.clock import now
from core.db import db, enum_type
from core.identity.models import Certificate, Organisation, Person
from evaluation.pool_models import CommitteeMember


class DecisionKind(enum.StrEnum):
    ABNORMALLY_LOW = "abnormally_low"  # outcome: accepted | rejected (below cost, 条例 §51(5))
    COMPETITION = "competition"        # outcome: continue | reject_all (fewer than 3 valid bids, 12号令 §27)


class CommitteeDecision(db.Model):
    """A decision of the committee recorded by its chair, with the reason (never automatic)."""

    __tablename__ = "committee_decisions"
    __table_args__ = (UniqueConstraint("evaluation_id", "kind", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id", ondelete="CASCADE"), index=True)
    kind: Mapped[DecisionKind] = mapped_column(enum_type(DecisionKind, 16))
    subject: Mapped[str] = mapped_column(String(32))  # "bid:<bid_opening_id>" or "lot:<lot_id>"
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    decided_by_id: Mapped[int] = mapped_column(ForeignKey("committee_members.id"))
    decided_at: Mapped[datetime] = mapped_column(default=now, onupdate=now)


class Dissent(db.Model):
    """A member's written dissent with reasons (条例 §53); one per member, rewritable until completion."""

    __tablename__ = "evaluation_dissents"
    __table_args__ = (UniqueConstraint("evaluation_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("committee_members.id"))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=now, onupdate=now)

    member: Mapped[CommitteeMember] = relationship()


class EvaluationResult(db.Model):
    """The evaluation's result, computed once by the tender's method at completion (评审结果)."""

    __tablename__ = "evaluation_results"
    __table_args__ = (UniqueConstraint("evaluation_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id", ondelete="CASCADE"))
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"), index=True)
    method: Mapped[str] = mapped_column(String(32))
    method_version: Mapped[str] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)      # the normalised method parameters
    inputs_sha256: Mapped[str] = mapped_column(String(64))  # of the canonical JSON of the inputs
    lots: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # per lot: review, items, outcome, candidates
    computed_at: Mapped[datetime] = mapped_column(default=now)


class ReportStatus(enum.StrEnum):
    SIGNING = "signing"   # members sign in turn
    SIGNED = "signed"     # every member signed: sent to the tenderer and the supervisors


class EvaluationReport(db.Model):
    """The evaluation report (评标报告): built from the data, one signature field per member."""

    __tablename__ = "evaluation_reports"
    __table_args__ = (UniqueConstraint("tender_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"))
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id", ondelete="CASCADE"))
    status: Mapped[ReportStatus] = mapped_column(enum_type(ReportStatus, 16), default=ReportStatus.SIGNING)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)      # what the PDF was built from
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{"field", "member_id", "name"}]
    prepared_sha256: Mapped[str] = mapped_column(String(64))  # the unsigned PDF with its empty fields
    pdf_sha256: Mapped[str] = mapped_column(String(64))      # the latest revision
    pdf_size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=now)
    signed_at: Mapped[datetime | None]                       # the last signature
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    tender: Mapped[Tender] = relationship()
    signatures: Mapped[list[ReportSignature]] = relationship(back_populates="report",
                                                             order_by="ReportSignature.id")


class ReportSignature(db.Model):
    """One member's signature on the report: the revision it produced and the certificate used."""

    __tablename__ = "evaluation_report_signatures"
    __table_args__ = (UniqueConstraint("report_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("evaluation_reports.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("committee_members.id"))
    field: Mapped[str] = mapped_column(String(32))
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"))
    revision_sha256: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(default=now)

    report: Mapped[EvaluationReport] = relationship(back_populates="signatures")
    member: Mapped[CommitteeMember] = relationship()
    certificate: Mapped[Certificate] = relationship()


class Publicity(db.Model):
    """The publicity of the candidates (中标候选人公示): at least 3 days (条例 §54)."""

    __tablename__ = "result_publicities"
    __table_args__ = (UniqueConstraint("tender_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"))
    days: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # per lot, as published
    published_by_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))

    tender: Mapped[Tender] = relationship()


class ResultObjection(db.Model):
    """An objection (异议) to the evaluation result, raised during publicity; answered within 3 days."""

    __tablename__ = "result_objections"

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    text: Mapped[str] = mapped_column(Text)
    raised_at: Mapped[datetime] = mapped_column(default=now)
    due_at: Mapped[datetime]
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    answered_at: Mapped[datetime | None]

    organisation: Mapped[Organisation] = relationship()
    person: Mapped[Person] = relationship(foreign_keys=[person_id])


class Award(db.Model):
    """The award of one lot (定标 / 中标): the winning bidder, how it was chosen, the notice time."""

    __tablename__ = "awards"
    __table_args__ = (UniqueConstraint("lot_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    bid_opening_id: Mapped[int] = mapped_column(ForeignKey("bid_openings.id"))
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    mode: Mapped[str] = mapped_column(String(16))   # rank_first | separated
    decision: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # separated: pick method, votes, lot
    decided_by_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    decided_at: Mapped[datetime] = mapped_column(default=now)
    notified_at: Mapped[datetime | None]            # the award notice (中标通知书) went out
    contract_signed_at: Mapped[datetime | None]     # the contract is signed (≤ 30 days after the notice, 法 §46)

    lot: Mapped[Lot] = relationship()
    organisation: Mapped[Organisation] = relationship()
