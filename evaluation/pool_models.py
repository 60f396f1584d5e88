"""Expert pool and drawing models: experts (评标专家), draw requests (抽取申请), draw rounds, committees.

A draw request names what a tender's committee (评标委员会) needs; each :class:`DrawRound` freezes a
candidate list, commits to a seed in the tender's transparency log, draws, then reveals the seed, so that
anyone holding the round can recompute its result. :class:`CommitteeMember` rows are the drawn members
and alternates in draw order, with the expert's answer and recusal status. Names stay sealed (only the
platform and the expert see them) until the evaluation starts.
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
from core.identity.models import Person


class Expert(db.Model):
    """An expert in the pool (评标专家库): specialties, home region, employer and declared avoidance units."""

    __tablename__ = "experts"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)  # pool number (专家编号)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    specialties: Mapped[list[str]] = mapped_column(JSON, default=list)  # specialty codes (专业代码)
    region: Mapped[str] = mapped_column(String(12))  # administrative division code of the home city
    employer_uscc: Mapped[str | None] = mapped_column(String(18), index=True)
    employer_name: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(100))  # 职称
    avoidance_usccs: Mapped[list[str]] = mapped_column(JSON, default=list)  # declared 回避单位
    is_available: Mapped[bool] = mapped_column(default=True)
    unavailable_reason: Mapped[str | None] = mapped_column(Text)
    is_penalised: Mapped[bool] = mapped_column(default=False)  # prior penalty for bidding misconduct
    is_supervision_staff: Mapped[bool] = mapped_column(default=False)  # 行政监督部门 staff
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now, onupdate=now)

    person: Mapped[Person | None] = relationship()

    def __repr__(self) -> str:
        return f"<Expert {self.code} {self.name}>"


class DrawStatus(enum.StrEnum):
    REQUESTED = "requested"      # asked for; no round drawn yet
    DRAWN = "drawn"              # members and alternates drawn; invitations out
    COMPLETE = "complete"        # enough members accepted
    SHORT = "short"              # alternates exhausted: a top-up draw (补抽) is needed
    CANCELLED = "cancelled"


class DrawRequest(db.Model):
    """A tender's request for a committee (评标专家抽取申请): specialties, headcount, region rules, venues."""

    __tablename__ = "draw_requests"
    __table_args__ = (UniqueConstraint("tender_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"))
    status: Mapped[DrawStatus] = mapped_column(enum_type(DrawStatus, 16), default=DrawStatus.REQUESTED)
    # [{"code": "A010101", "count": 3}, ...]: experts per specialty
    specialties: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    committee_size: Mapped[int] = mapped_column(Integer)  # odd, >= 5; includes tenderer representatives
    tenderer_representatives: Mapped[int] = mapped_column(Integer, default=0)  # 招标人代表 (<= 1/3)
    alternates: Mapped[int] = mapped_column(Integer, default=2)  # per specialty, drawn in order
    is_remote: Mapped[bool] = mapped_column(default=True)  # 远程异地评标
    host_region: Mapped[str | None] = mapped_column(String(12))  # region of the host centre (主场)
    local_cap: Mapped[int | None] = mapped_column(Integer)  # at most this many experts from host_region
    venues: Mapped[list[str]] = mapped_column(JSON, default=list)  # evaluation rooms (主场/副场)
    excluded_usccs: Mapped[list[str]] = mapped_column(JSON, default=list)  # extra units to avoid
    frequency_cap: Mapped[int | None] = mapped_column(Integer)  # max draws for the same tenderer per year
    check_in_at: Mapped[datetime | None]
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    requested_at: Mapped[datetime] = mapped_column(default=now)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    tender: Mapped[Tender] = relationship()
    rounds: Mapped[list[DrawRound]] = relationship(back_populates="request", order_by="DrawRound.number")
    members: Mapped[list[CommitteeMember]] = relationship(back_populates="request",
                                                          order_by="CommitteeMember.position")


class DrawRound(db.Model):
    """One verifiable draw: frozen candidates, committed seed, result, revealed seed (initial or 补抽)."""

    __tablename__ = "draw_rounds"
    __table_args__ = (UniqueConstraint("request_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("draw_requests.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # 1 = initial draw, 2.. = top-up draws
    purpose: Mapped[str] = mapped_column(String(16), default="initial")  # initial | top_up
    # {"A010101": {"count": 3, "alternates": 2}}: what this round draws per specialty
    wanted: Mapped[dict[str, Any]] = mapped_column(JSON)
    # the frozen candidate list: {"specialties": {code: [expert codes, sorted]}, "local": [codes], ...}
    candidates: Mapped[dict[str, Any]] = mapped_column(JSON)
    candidates_sha256: Mapped[str] = mapped_column(String(64))
    excluded: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # [{"code", "reasons"}]
    seed_commitment: Mapped[str] = mapped_column(String(64))  # SHA-256 of the seed, logged before drawing
    seed: Mapped[str | None] = mapped_column(String(64))  # hex; revealed (and logged) after the draw
    # public value mixed into the seed at draw time (the tender log's latest signed root), unknown at commit
    beacon: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # {code: {"members": [...], "alternates": [...]}}
    commit_log_index: Mapped[int | None] = mapped_column(Integer)
    reveal_log_index: Mapped[int | None] = mapped_column(Integer)
    committed_at: Mapped[datetime] = mapped_column(default=now)
    drawn_at: Mapped[datetime | None]
    drawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))

    request: Mapped[DrawRequest] = relationship(back_populates="rounds")


class MemberStatus(enum.StrEnum):
    WAITING = "waiting"          # an alternate not called yet
    INVITED = "invited"          # notified; must accept or decline
    ACCEPTED = "accepted"        # will sit on the committee
    DECLINED = "declined"        # said no (reason kept); the next alternate is invited
    SIGNED_IN = "signed_in"      # signed the recusal declaration in the evaluation: may score
    RECUSED = "recused"          # 回避: conflict found or declared; replaced by the next alternate
    RELEASED = "released"        # an alternate not needed once the committee was complete


ACTIVE_MEMBER_STATUSES = frozenset({MemberStatus.INVITED, MemberStatus.ACCEPTED, MemberStatus.SIGNED_IN})


class CommitteeMember(db.Model):
    """A drawn expert (member or alternate) of a tender's committee, in draw order, with their answers."""

    __tablename__ = "committee_members"
    __table_args__ = (UniqueConstraint("request_id", "expert_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("draw_requests.id", ondelete="CASCADE"), index=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id", ondelete="CASCADE"), index=True)
    expert_id: Mapped[int] = mapped_column(ForeignKey("experts.id"), index=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("draw_rounds.id"))
    specialty: Mapped[str] = mapped_column(String(32))
    position: Mapped[int] = mapped_column(Integer)  # order over the whole request (members, then alternates)
    is_alternate: Mapped[bool] = mapped_column(default=False)
    status: Mapped[MemberStatus] = mapped_column(enum_type(MemberStatus, 16), default=MemberStatus.WAITING)
    invited_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    decline_reason: Mapped[str | None] = mapped_column(Text)
    recusal_reason: Mapped[str | None] = mapped_column(Text)
    recused_at: Mapped[datetime | None]
    # the recusal declaration (回避声明/承诺书) the expert signed at sign-in, and its signature
    declaration: Mapped[str | None] = mapped_column(Text)
    declaration_sha256: Mapped[str | None] = mapped_column(String(64))
    declaration_signature: Mapped[str | None] = mapped_column(Text)  # base64 ECDSA P-256 (DER) over the text
    declaration_certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificates.id"))
    declaration_method: Mapped[str | None] = mapped_column(String(16))  # certificate | typed (name typed)
    signed_in_at: Mapped[datetime | None]
    venue: Mapped[str | None] = mapped_column(String(200))

    request: Mapped[DrawRequest] = relationship(back_populates="members")
    expert: Mapped[Expert] = relationship()
    round: Mapped[DrawRound] = relationship()
