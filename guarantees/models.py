"""E-guarantee models (电子保函): issuers, products and rate versions, orders, waivers, claims, the outbox."""

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
from core.identity.models import Organisation
from guarantees.lifecycle import OrderState

Permille = Numeric(8, 4, asdecimal=True)
"""A rate in per mille (‰), e.g. 1.2500."""


class IssuerKind(enum.StrEnum):
    BANK = "bank"                              # 银行保函
    INSURER = "insurer"                        # 投标保证保险 (电子保单)
    GUARANTEE_COMPANY = "guarantee_company"    # 担保公司保函


class GuaranteeType(enum.StrEnum):
    PLAIN = "plain"    # 明文保函
    SEALED = "sealed"  # 密文保函: tender and bidder hidden until the opening


class WaiverKind(enum.StrEnum):
    WAIVED_ALL = "waived_all"                  # 免收投标保证金
    WAIVED_SME = "waived_sme"                  # 中小企业免收
    CREDIT_COMMITMENT = "credit_commitment"    # 信用承诺替代保证金


class ClaimTrigger(enum.StrEnum):
    REVOKED_AFTER_DEADLINE = "revoked_after_deadline"      # 条例 §35
    REFUSED_CONTRACT = "refused_contract"                  # 条例 §74
    ADDED_CONDITIONS = "added_conditions"                  # 条例 §74
    NO_PERFORMANCE_SECURITY = "no_performance_security"    # 条例 §74
    OTHER_IN_DOCUMENTS = "other_in_documents"              # events named in the tender documents


class ClaimState(enum.StrEnum):
    FILED = "filed"
    SENT = "sent"
    PAID = "paid"
    DENIED = "denied"


class OutboxState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"  # superseded before it was sent (an application cancelled while still queued)


class Issuer(db.Model):
    """An issuer (出函机构: bank, insurer, guarantee company) admitted to the platform's whitelist."""

    __tablename__ = "guarantee_issuers"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), unique=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)  # its sender id in the protocol
    kind: Mapped[IssuerKind] = mapped_column(enum_type(IssuerKind))
    api_base_url: Mapped[str] = mapped_column(String(500))
    message_cert_pem: Mapped[str] = mapped_column(Text)       # verifies its protocol messages
    letter_trust_root_pem: Mapped[str] = mapped_column(Text)  # its own CA: letter signatures chain to it
    is_admitted: Mapped[bool] = mapped_column(default=True)
    admitted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=now)

    organisation: Mapped[Organisation] = relationship()
    products: Mapped[list[GuaranteeProduct]] = relationship(back_populates="issuer",
                                                            order_by="GuaranteeProduct.id")
    certificates: Mapped[list[IssuerCertificate]] = relationship(back_populates="issuer",
                                                                 order_by="IssuerCertificate.version")

    @property
    def name(self) -> str:
        return self.organisation.name


class IssuerCertificate(db.Model):
    """One version of an issuer's certificates and endpoint (证书版本); a rotation adds a row, never edits one.

    The version in force at a moment verifies the messages dated then and the letters issued then, so a
    rotation never invalidates what was signed before it. ``Issuer`` keeps a copy of the current version.
    """

    __tablename__ = "guarantee_issuer_certificates"
    __table_args__ = (UniqueConstraint("issuer_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("guarantee_issuers.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    api_base_url: Mapped[str] = mapped_column(String(500))
    message_cert_pem: Mapped[str] = mapped_column(Text)
    letter_trust_root_pem: Mapped[str] = mapped_column(Text)
    message_cert_sha256: Mapped[str] = mapped_column(String(64))
    trust_root_sha256: Mapped[str] = mapped_column(String(64))
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime | None]             # None while current; set when the next version starts
    revoked: Mapped[bool] = mapped_column(default=False)  # retired as compromised: no grace for its messages
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))

    issuer: Mapped[Issuer] = relationship(back_populates="certificates")


class GuaranteeProduct(db.Model):
    """A guarantee product (保函产品) of an issuer: fees, validity rules; its rates are versioned."""

    __tablename__ = "guarantee_products"
    __table_args__ = (UniqueConstraint("issuer_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("guarantee_issuers.id"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    minimum_fee: Mapped[Decimal]
    maximum_fee: Mapped[Decimal | None]
    extra_validity_days: Mapped[int] = mapped_column(Integer, default=0)  # beyond the bid validity
    claim_answer_days: Mapped[int] = mapped_column(Integer, default=7)    # the issuer answers a claim within
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=now)

    issuer: Mapped[Issuer] = relationship(back_populates="products")
    rates: Mapped[list[ProductRate]] = relationship(back_populates="product", order_by="ProductRate.effective_from")


class ProductRate(db.Model):
    """One version of a product's rate; a new rate is a new row, never an update."""

    __tablename__ = "guarantee_product_rates"
    __table_args__ = (UniqueConstraint("product_id", "effective_from"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("guarantee_products.id"), index=True)
    rate_permille: Mapped[Decimal] = mapped_column(Permille)
    effective_from: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))

    product: Mapped[GuaranteeProduct] = relationship(back_populates="rates")


class RatePolicy(db.Model):
    """A version of the platform's rate policy: the cap, and the reference rate for "premiums saved"."""

    __tablename__ = "guarantee_rate_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    cap_permille: Mapped[Decimal] = mapped_column(Permille)
    reference_permille: Mapped[Decimal] = mapped_column(Permille)
    effective_from: Mapped[datetime] = mapped_column(unique=True)
    created_at: Mapped[datetime] = mapped_column(default=now)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))


class GuaranteeOrder(db.Model):
    """A bidder's application for a bid guarantee (保函订单), from draft to its letter's release or claim."""

    __tablename__ = "guarantee_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_no: Mapped[str] = mapped_column(String(40), unique=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"), index=True)
    bidder_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("guarantee_issuers.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("guarantee_products.id"))
    rate_id: Mapped[int] = mapped_column(ForeignKey("guarantee_product_rates.id"))
    rate_permille: Mapped[Decimal] = mapped_column(Permille)            # frozen at application
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("guarantee_rate_policies.id"))
    reference_permille: Mapped[Decimal | None] = mapped_column(Permille)  # frozen, for "premiums saved"
    payer_account: Mapped[str | None] = mapped_column(String(40))  # the account the issuer says paid the premium
    amount: Mapped[Decimal]
    premium: Mapped[Decimal]
    guarantee_type: Mapped[GuaranteeType] = mapped_column(enum_type(GuaranteeType))
    required_valid_until: Mapped[datetime]
    state: Mapped[OrderState] = mapped_column(enum_type(OrderState), default=OrderState.DRAFT, index=True)

    guarantee_no: Mapped[str | None] = mapped_column(String(64), index=True)
    issued_at: Mapped[datetime | None] = mapped_column(index=True)
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    letter_filename: Mapped[str | None] = mapped_column(String(255))
    letter_sha256: Mapped[str | None] = mapped_column(String(64), index=True)       # declared by the issuer
    letter_file_sha256: Mapped[str | None] = mapped_column(String(64))              # FileStore key (checked equal)
    superseded_sha256: Mapped[str | None] = mapped_column(String(64), index=True)   # sealed revision 1, once revealed
    verification_code: Mapped[str | None] = mapped_column(String(16))
    revealed_at: Mapped[datetime | None]          # sealed letters: DecryptionNotice queued
    bound_at: Mapped[datetime | None]
    verified_at_opening: Mapped[datetime | None]
    release_reason: Mapped[str | None] = mapped_column(String(40))
    release_trigger_at: Mapped[datetime | None]   # the event that obliges the release (5-day clock)
    released_at: Mapped[datetime | None]
    release_confirmed_at: Mapped[datetime | None]  # the issuer's ReleaseNotify
    release_overdue_flagged_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    close_reason: Mapped[str | None] = mapped_column(String(40))  # see guarantees.closing.CloseReason
    attempts: Mapped[int] = mapped_column(Integer, default=0)   # delivery attempts of its latest message
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now, onupdate=now)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    tender: Mapped[Tender] = relationship()
    lot: Mapped[Lot] = relationship()
    bidder: Mapped[Organisation] = relationship()
    issuer: Mapped[Issuer] = relationship()
    product: Mapped[GuaranteeProduct] = relationship()
    claims: Mapped[list[GuaranteeClaim]] = relationship(back_populates="order", order_by="GuaranteeClaim.id")


class BondWaiver(db.Model):
    """A bidder's use of a bond waiver (免收保证金) or credit commitment (信用承诺) for a lot."""

    __tablename__ = "guarantee_bond_waivers"
    __table_args__ = (UniqueConstraint("lot_id", "bidder_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"))
    bidder_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    kind: Mapped[WaiverKind] = mapped_column(enum_type(WaiverKind))
    statement: Mapped[str] = mapped_column(Text)
    bond_amount: Mapped[Decimal | None]  # the bond the waiver replaces (for the figures)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    created_at: Mapped[datetime] = mapped_column(default=now, index=True)

    tender: Mapped[Tender] = relationship()
    lot: Mapped[Lot] = relationship()
    bidder: Mapped[Organisation] = relationship()


class GuaranteeClaim(db.Model):
    """A claim (索赔) by the beneficiary (招标人) on a letter, relayed to the issuer."""

    __tablename__ = "guarantee_claims"

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_no: Mapped[str] = mapped_column(String(40), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("guarantee_orders.id"), index=True)
    trigger: Mapped[ClaimTrigger] = mapped_column(enum_type(ClaimTrigger, 40))
    amount: Mapped[Decimal]
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # [{filename, sha256, size}]
    state: Mapped[ClaimState] = mapped_column(enum_type(ClaimState), default=ClaimState.FILED, index=True)
    filed_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    filed_at: Mapped[datetime] = mapped_column(default=now)
    sent_at: Mapped[datetime | None]
    answer_due_at: Mapped[datetime]
    overdue_flagged_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    amount_paid: Mapped[Decimal | None]
    decision_reason: Mapped[str | None] = mapped_column(Text)

    order: Mapped[GuaranteeOrder] = relationship(back_populates="claims")


class OpeningCheck(db.Model):
    """The guarantee check of one bidder for one lot at the opening (开标保函验证), re-run replaces it."""

    __tablename__ = "guarantee_opening_checks"
    __table_args__ = (UniqueConstraint("lot_id", "bidder_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tender_id: Mapped[int] = mapped_column(ForeignKey("tenders.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"))
    bidder_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("guarantee_orders.id"))
    waiver_id: Mapped[int | None] = mapped_column(ForeignKey("guarantee_bond_waivers.id"))
    passed: Mapped[bool]
    checks: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # [{name, passed, reason}]
    checked_at: Mapped[datetime] = mapped_column(default=now)


class SeenNonce(db.Model):
    """A (sender, nonce) pair already accepted: a replay of it is refused (kept ≥ 600 s)."""

    __tablename__ = "guarantee_seen_nonces"
    __table_args__ = (UniqueConstraint("sender", "nonce"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sender: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(32))
    seen_at: Mapped[datetime] = mapped_column(index=True)


class OutboundMessage(db.Model):
    """A message to an issuer, kept until delivered (outbox): nothing is lost while an issuer is down.

    Only ``data`` is stored; each attempt signs afresh (new nonce and timestamp), as the receiver refuses
    stale timestamps and replayed nonces.
    """

    __tablename__ = "guarantee_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("guarantee_orders.id"), index=True)
    claim_id: Mapped[int | None] = mapped_column(ForeignKey("guarantee_claims.id"))
    type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[OutboxState] = mapped_column(enum_type(OutboxState), default=OutboxState.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(index=True)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=now)
    sent_at: Mapped[datetime | None]

    order: Mapped[GuaranteeOrder] = relationship()
