"""Scoring room models (远程异地评标 评标室): the evaluation, sheets, chair votes, clarifications, disputes.

One :class:`Evaluation` per tender, opened once the opening record is published and the committee is
complete. Each signed-in member keeps one :class:`ScoreSheet` per opened bid, saved as they type and
private until they submit it. Everything a member does in the room is also an audit event and an entry
in the tender's transparency log.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bidding.models import Tender
from bidding.opening_models import BidOpening
from core.clock import now
from core.db import db, enum_type
from core.identity.models import Organisation, Person
from evaluation.pool_models import CommitteeMember


class EvaluationStatus(enum.StrEnum):
    SIGNING_IN = "signing_in"    # members sign in and declare; chair election
    SCORING = "scoring"          # members score
    SUMMARY = "summary"          # every sheet submitted; the chair writes the summary, disputes are voted
    COMPLETE = "complete"        # summary signed off: hand-off to results and the report
    SUSPENDED = "suspended"      # a supervisor suspended the room (reason kept); resumes to ``resume_to``


class Evaluation(db.Model):
    """A tender's evaluation (评标) and its scoring room: status, chair, frozen criteria, summary."""

    __tablename__ = "evaluations"
    __table_args__ = (UniqueConstraint("tender_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"))
    status: Mapped[EvaluationStatus] = mapped_column(enum_type(EvaluationStatus, 16),
                                                     default=EvaluationStatus.SIGNING_IN)
    resume_to: Mapped[EvaluationStatus | None] = mapped_column(enum_type(EvaluationStatus, 16))
    # the criteria of the tender's method, frozen at the start: [{"code", "kind", "title", "min", "max"}]
    criteria: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    deviation_threshold: Mapped[Decimal] = mapped_column(Numeric(6, 4), default=Decimal("0.3"))
    chair_member_id: Mapped[int | None] = mapped_column(ForeignKey("committee_members.id"))
    summary: Mapped[str | None] = mapped_column(Text)
    summary_at: Mapped[datetime | None]
    suspended_reason: Mapped[str | None] = mapped_column(Text)
    suspended_at: Mapped[datetime | None]
    suspended_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    started_by_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    started_at: Mapped[datetime] = mapped_column(default=now)
    completed_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    tender: Mapped[Tender] = relationship()
    chair: Mapped[CommitteeMember | None] = relationship(foreign_keys=[chair_member_id])


class ScoreSheet(db.Model):
    """One member's scoring sheet for one bid (评分表): values per criterion, draft until submitted."""

    __tablename__ = "score_sheets"
    __table_args__ = (UniqueConstraint("member_id", "bid_opening_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("committee_members.id"), index=True)
    bid_opening_id: Mapped[int] = mapped_column(ForeignKey("bid_openings.id"))
    # {criterion code: "7.5" (scored, decimal string) or "pass" / "fail" (pass/fail items)}
    values: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    comments: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # reasons, required for "fail"
    revision: Mapped[int] = mapped_column(Integer, default=0)  # bumped by every save (drafts resume from it)
    submitted_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=now, onupdate=now)

    member: Mapped[CommitteeMember] = relationship()
    bid_opening: Mapped[BidOpening] = relationship()


class ChairVote(db.Model):
    """A member's vote for the committee chair (评标委员会主任委员); one per member, changeable."""

    __tablename__ = "chair_votes"
    __table_args__ = (UniqueConstraint("evaluation_id", "voter_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id", ondelete="CASCADE"), index=True)
    voter_id: Mapped[int] = mapped_column(ForeignKey("committee_members.id"))
    candidate_id: Mapped[int] = mapped_column(ForeignKey("committee_members.id"))
    at: Mapped[datetime] = mapped_column(default=now, onupdate=now)


class ClarificationStatus(enum.StrEnum):
    OPEN = "open"
    ANSWERED = "answered"
    EXPIRED = "expired"          # no answer by the deadline: the committee evaluates the bid as it stands


class Clarification(db.Model):
    """A written clarification request (澄清) from the committee to one bidder, and its answer."""

    __tablename__ = "evaluation_clarifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id", ondelete="CASCADE"), index=True)
    bid_opening_id: Mapped[int] = mapped_column(ForeignKey("bid_openings.id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    asked_by_id: Mapped[int] = mapped_column(ForeignKey("committee_members.id"))
    question: Mapped[str] = mapped_column(Text)
    asked_at: Mapped[datetime] = mapped_column(default=now)
    due_at: Mapped[datetime]
    status: Mapped[ClarificationStatus] = mapped_column(enum_type(ClarificationStatus, 16),
                                                        default=ClarificationStatus.OPEN)
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    answered_at: Mapped[datetime | None]

    organisation: Mapped[Organisation] = relationship()
    bid_opening: Mapped[BidOpening] = relationship()
    answered_by: Mapped[Person | None] = relationship()


class DisputeStatus(enum.StrEnum):
    VOTING = "voting"
    DECIDED = "decided"


class Dispute(db.Model):
    """A disputed pass/fail finding on one bid, put to the committee's vote (少数服从多数)."""

    __tablename__ = "evaluation_disputes"
    __table_args__ = (UniqueConstraint("evaluation_id", "bid_opening_id", "criterion"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id", ondelete="CASCADE"), index=True)
    bid_opening_id: Mapped[int] = mapped_column(ForeignKey("bid_openings.id"))
    criterion: Mapped[str] = mapped_column(String(64))
    raised_by_id: Mapped[int] = mapped_column(ForeignKey("committee_members.id"))
    reason: Mapped[str] = mapped_column(Text)
    raised_at: Mapped[datetime] = mapped_column(default=now)
    status: Mapped[DisputeStatus] = mapped_column(enum_type(DisputeStatus, 16), default=DisputeStatus.VOTING)
    outcome: Mapped[str | None] = mapped_column(String(8))  # pass | fail
    decided_at: Mapped[datetime | None]

    votes: Mapped[list[DisputeVote]] = relationship(back_populates="dispute", order_by="DisputeVote.id")


class DisputeVote(db.Model):
    """A member's vote on a dispute: pass or fail, with an optional reason (dissent goes in the report)."""

    __tablename__ = "evaluation_dispute_votes"
    __table_args__ = (UniqueConstraint("dispute_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dispute_id: Mapped[int] = mapped_column(ForeignKey("evaluation_disputes.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("committee_members.id"))
    vote: Mapped[str] = mapped_column(String(8))  # pass | fail
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=now)

    dispute: Mapped[Dispute] = relationship(back_populates="votes")
