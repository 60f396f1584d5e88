"""Identity models: persons (人员), organisations (单位, by USCC), role grants, API tokens, certificates."""

from __future__ import annotations

import enum
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import as_utc, now
from core.db import db, enum_type


class Role(enum.StrEnum):
    """Roles a person can hold; bidder and tenderer/agency roles are held for an organisation."""

    BIDDER = "bidder"            # 投标人 (member of a bidder organisation)
    TENDERER = "tenderer"        # 招标人 staff
    AGENCY = "agency"            # 招标代理机构 staff
    EXPERT = "expert"            # 评标专家
    SUPERVISOR = "supervisor"    # 监督人员
    CUSTODIAN = "custodian"      # 开标密钥保管人
    ISSUER = "issuer"            # 保函出具机构 staff
    ADMIN = "admin"              # 平台管理员


ORG_ROLES = frozenset({Role.BIDDER, Role.TENDERER, Role.AGENCY, Role.ISSUER})
"""Roles that are always held on behalf of an organisation."""


class OrganisationKind(enum.StrEnum):
    COMPANY = "company"
    TENDERER = "tenderer"
    AGENCY = "agency"
    TRADING_CENTRE = "trading_centre"
    ISSUER = "issuer"
    AUTHORITY = "authority"


class Organisation(db.Model):
    """An organisation identified by its unified social credit code (统一社会信用代码, USCC)."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[OrganisationKind] = mapped_column(enum_type(OrganisationKind, 32))
    region: Mapped[str | None] = mapped_column(String(12))
    is_sme: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=now)

    grants: Mapped[list[RoleGrant]] = relationship(back_populates="organisation")

    def __repr__(self) -> str:
        return f"<Organisation {self.uscc} {self.name}>"


class Person(UserMixin, db.Model):
    """A natural person with a login; roles come from :class:`RoleGrant` rows."""

    __tablename__ = "persons"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    locale: Mapped[str | None] = mapped_column(String(8))
    is_enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=now)

    grants: Mapped[list[RoleGrant]] = relationship(back_populates="person", cascade="all, delete-orphan")
    api_tokens: Mapped[list[ApiToken]] = relationship(back_populates="person", cascade="all, delete-orphan",
                                                      order_by="ApiToken.id")

    @property
    def is_active(self) -> bool:  # Flask-Login
        return self.is_enabled

    def has_role(self, role: Role, organisation_id: int | None = None) -> bool:
        return any(g.role == role and (organisation_id is None or g.organisation_id == organisation_id)
                   for g in self.grants)

    def organisations_for(self, *roles: Role) -> list[Organisation]:
        return [g.organisation for g in self.grants if g.role in roles and g.organisation is not None]

    def __repr__(self) -> str:
        return f"<Person {self.email}>"


class RoleGrant(db.Model):
    """A role held by a person, on behalf of an organisation for organisation roles."""

    __tablename__ = "role_grants"
    __table_args__ = (UniqueConstraint("person_id", "role", "organisation_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(enum_type(Role, 32))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    granted_at: Mapped[datetime] = mapped_column(default=now)

    person: Mapped[Person] = relationship(back_populates="grants")
    organisation: Mapped[Organisation | None] = relationship(back_populates="grants")


class ApiToken(db.Model):
    """A personal API token (``Authorization: Bearer ebid_...``); only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))  # the first characters, shown so the holder can tell tokens apart
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=now)
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    person: Mapped[Person] = relationship(back_populates="api_tokens")

    def state(self, at: datetime | None = None) -> str:
        """Return "revoked", "expired" or "active" at ``at`` (default: now)."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and as_utc(self.expires_at) <= (at or now()):
            return "expired"
        return "active"


class CertificateSubject(enum.StrEnum):
    PERSON = "person"
    ORGANISATION = "organisation"


class Certificate(db.Model):
    """A certificate issued by the platform CA (平台CA) to a person or an organisation (by USCC).

    An organisation's certificate may name the person who holds its key; certificate login needs one.
    """

    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(String(40), unique=True)  # lower-case hex
    subject_kind: Mapped[CertificateSubject] = mapped_column(enum_type(CertificateSubject, 16))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    subject: Mapped[str] = mapped_column(String(500))  # RFC 4514
    pem: Mapped[str] = mapped_column(Text)
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    not_before: Mapped[datetime]
    not_after: Mapped[datetime]
    issued_at: Mapped[datetime] = mapped_column(default=now)
    revoked_at: Mapped[datetime | None]
    revocation_reason: Mapped[str | None] = mapped_column(String(32))

    person: Mapped[Person | None] = relationship()
    organisation: Mapped[Organisation | None] = relationship()

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class AuthChallenge(db.Model):
    """A single-use server nonce handed out by an identity provider's ``begin``."""

    __tablename__ = "auth_challenges"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=now)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]
    source: Mapped[str | None] = mapped_column(String(64))
