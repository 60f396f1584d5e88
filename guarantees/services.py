"""Administration of the e-guarantee market: issuers (出函机构), products, rate versions, the rate policy.

Verbs take the actor, validate, change, audit and flush; the caller commits. Issuers are admitted by
a platform administrator; an issuer's own staff may manage its products and rates. Rates and
policies are versioned: a change is a new row with its ``effective_from``, never an update, so every
order can say which version it used. The order verbs live in :mod:`guarantees.orders`, claims in
:mod:`guarantees.claims`.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlparse

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core import audit
from core.actor import Actor
from core.clock import as_utc, now
from core.db import db
from core.errors import Conflict, ValidationFailed
from core.identity.access import is_admin
from core.identity.models import Organisation, OrganisationKind, Role
from guarantees import notices, rates
from guarantees.errors import AdminRequired
from guarantees.issuer_certs import check_message_certificate, check_trust_root, current_version, fingerprint
from guarantees.models import GuaranteeProduct, Issuer, IssuerCertificate, IssuerKind, ProductRate, RatePolicy

CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,31}$")


def require_admin(actor: Actor) -> None:
    if not is_admin(actor):
        raise AdminRequired()


def require_admin_or_issuer(actor: Actor, issuer: Issuer) -> None:
    """Administrators, or the issuer's own staff, manage its products and rates."""
    if is_admin(actor) or (actor.role == Role.ISSUER and actor.organisation_id == issuer.organisation_id):
        return
    raise AdminRequired(_l("Only a platform administrator or staff of %(issuer)s may change its products."),
                        issuer=issuer.name)


# -- read models ----------------------------------------------------------------------------------

def issuer_by_code(code: str) -> Issuer | None:
    return db.session.scalar(select(Issuer).where(Issuer.code == code))


def policy_in_force(at: datetime | None = None) -> RatePolicy | None:
    """The rate policy version in force at ``at`` (None before the first one)."""
    at = at or now()
    return db.session.scalar(select(RatePolicy).where(RatePolicy.effective_from <= at)
                             .order_by(RatePolicy.effective_from.desc()).limit(1))


def rate_in_force(product: GuaranteeProduct, at: datetime | None = None) -> ProductRate | None:
    """The product's rate version in force at ``at``."""
    at = at or now()
    return db.session.scalar(select(ProductRate).where(ProductRate.product_id == product.id,
                                                       ProductRate.effective_from <= at)
                             .order_by(ProductRate.effective_from.desc()).limit(1))


def product_availability(product: GuaranteeProduct, at: datetime | None = None,
                         allowed_kinds: frozenset[str] | None = None) -> rates.Availability:
    """Whether ``product`` can be offered at ``at``, and why not."""
    at = at or now()
    rate = rate_in_force(product, at)
    policy = policy_in_force(at)
    return rates.availability(
        is_active=product.is_active, issuer_admitted=product.issuer.is_admitted,
        rate=rate.rate_permille if rate else None, cap=policy.cap_permille if policy else None,
        issuer_kind_allowed=allowed_kinds is None or product.issuer.kind.value in allowed_kinds)


# -- validation helpers ---------------------------------------------------------------------------

def _refuse(field: str, message: Any) -> ValidationFailed:
    return ValidationFailed(message, fields={field: [message]})


def _code(value: str, field: str = "code") -> str:
    code = (value or "").strip()
    if not CODE_RE.match(code):
        raise _refuse(field, _l("Use 2 to 32 letters, digits, '.', '_' or '-', starting with a letter or digit."))
    return code


def api_url(value: str) -> str:
    """The issuer's API base URL, normalised (no trailing slash), else a refusal on ``api_base_url``."""
    url = (value or "").strip().rstrip("/")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.query or parsed.fragment:
        raise _refuse("api_base_url", _l("Enter the issuer's API address, e.g. https://guarantee.bank.example/api."))
    return url


def check_reason(value: str) -> str:
    """The stripped reason for a change of an issuer (5 to 500 characters), else a refusal on ``reason``."""
    reason = (value or "").strip()
    if not 5 <= len(reason) <= 500:
        raise _refuse("reason", _l("Say why the certificate or endpoint changes (5 to 500 characters); it is "
                                   "recorded in the audit trail."))
    return reason


def _effective(value: datetime | None) -> datetime:
    at = now()
    if value is None:
        return at
    value = as_utc(value)
    if value < at:
        raise _refuse("effective_from", _l("A new version cannot take effect in the past; choose now or later."))
    return value


def _money(value: Any, field: str, *, required: bool = True) -> Decimal | None:
    if value is None or value == "":
        if required:
            raise _refuse(field, _l("This field is required."))
        return None
    return rates.as_decimal(value, field)


# -- issuers --------------------------------------------------------------------------------------

def admit_issuer(actor: Actor, organisation: Organisation, *, code: str, kind: IssuerKind | str,
                 api_base_url: str, message_cert_pem: str, letter_trust_root_pem: str) -> Issuer:
    """Admit an issuer organisation to the whitelist with its protocol certificate and letter CA."""
    require_admin(actor)
    if organisation.kind != OrganisationKind.ISSUER:
        raise _refuse("organisation", _l("%(name)s is registered as a %(kind)s, not as an issuer.",
                                         name=organisation.name, kind=organisation.kind.value))
    code = _code(code)
    try:
        kind = IssuerKind(kind)
    except ValueError:
        raise _refuse("kind", _l("Use one of: %(kinds)s.", kinds=", ".join(k.value for k in IssuerKind))) from None
    url = api_url(api_base_url)
    message_pem = check_message_certificate(message_cert_pem)
    root_pem = check_trust_root(letter_trust_root_pem)
    if issuer_by_code(code) is not None:
        raise Conflict(_l("Another issuer already uses the code %(code_value)s."), code="duplicate_issuer_code",
                       fields={"code": [_l("Choose another code.")]}, code_value=code)
    if db.session.scalar(select(Issuer).where(Issuer.organisation_id == organisation.id)) is not None:
        raise Conflict(_l("%(name)s is already an issuer on this platform."), code="issuer_exists",
                       name=organisation.name)
    at = now()
    issuer = Issuer(organisation_id=organisation.id, code=code, kind=kind, api_base_url=url,
                    message_cert_pem=message_pem, letter_trust_root_pem=root_pem, is_admitted=True,
                    admitted_at=at, created_at=at)
    db.session.add(issuer)
    db.session.flush()
    version = _new_version(actor, issuer, at, reason="admitted")
    audit.record(actor, "guarantee.issuer.admit", "guarantee_issuer", issuer.id,
                 {"code": code, "organisation_uscc": organisation.uscc, "kind": kind.value, "api_base_url": url,
                  "message_cert_sha256": version.message_cert_sha256,
                  "trust_root_sha256": version.trust_root_sha256, "certificate_version": version.version})
    return issuer


def _new_version(actor: Actor, issuer: Issuer, at: datetime, *, reason: str) -> IssuerCertificate:
    """Record the issuer's current endpoint and certificates as its next version, in force from ``at``."""
    number = max((v.version for v in issuer.certificates), default=0) + 1
    version = IssuerCertificate(issuer_id=issuer.id, version=number, api_base_url=issuer.api_base_url,
                                message_cert_pem=issuer.message_cert_pem,
                                letter_trust_root_pem=issuer.letter_trust_root_pem,
                                message_cert_sha256=fingerprint(issuer.message_cert_pem),
                                trust_root_sha256=fingerprint(issuer.letter_trust_root_pem), valid_from=at,
                                valid_until=None, revoked=False, reason=reason, created_at=at,
                                created_by_id=actor.person_id)
    db.session.add(version)
    issuer.certificates.append(version)
    db.session.flush()
    return version


def update_issuer(actor: Actor, issuer: Issuer, *, message_cert_pem: str | None = None,
                  letter_trust_root_pem: str | None = None, api_base_url: str | None = None, reason: str = "",
                  compromised: bool = False) -> IssuerCertificate:
    """Rotate an issuer's certificates and/or move its endpoint, from now on; return the new version.

    The replaced version stays on record: it still verifies letters issued while it was current, and
    messages dated before now. ``compromised`` retires the old message key without that grace.
    """
    require_admin(actor)
    reason = check_reason(reason)
    url = api_url(api_base_url) if api_base_url else issuer.api_base_url
    message_pem = check_message_certificate(message_cert_pem) if message_cert_pem else issuer.message_cert_pem
    root_pem = check_trust_root(letter_trust_root_pem) if letter_trust_root_pem else issuer.letter_trust_root_pem
    changed = {name for name, old, new in (("api_base_url", issuer.api_base_url, url),
                                           ("message_cert", fingerprint(issuer.message_cert_pem),
                                            fingerprint(message_pem)),
                                           ("letter_trust_root", fingerprint(issuer.letter_trust_root_pem),
                                            fingerprint(root_pem))) if old != new}
    if not changed:
        raise _refuse("message_cert_pem", _l("Nothing changes: give a new message certificate, a new letter trust "
                                             "root or a new API address."))
    if compromised and "message_cert" not in changed:
        raise _refuse("message_cert_pem", _l("A compromised key must be replaced: give the new message "
                                             "certificate."))
    at = now()
    previous = current_version(issuer) or _new_version(actor, issuer, issuer.admitted_at or issuer.created_at,
                                                       reason="admitted")
    previous.valid_until = at
    previous.revoked = compromised
    issuer.api_base_url, issuer.message_cert_pem, issuer.letter_trust_root_pem = url, message_pem, root_pem
    version = _new_version(actor, issuer, at, reason=reason)
    audit.record(actor, "guarantee.issuer.update", "guarantee_issuer", issuer.id,
                 {"code": issuer.code, "changed": sorted(changed), "reason": reason, "compromised": compromised,
                  "certificate_version": version.version, "previous_version": previous.version,
                  "api_base_url": url, "previous_api_base_url": previous.api_base_url,
                  "message_cert_sha256": version.message_cert_sha256,
                  "previous_message_cert_sha256": previous.message_cert_sha256,
                  "trust_root_sha256": version.trust_root_sha256,
                  "previous_trust_root_sha256": previous.trust_root_sha256})
    notices.notify(notices.members([issuer.organisation_id], [Role.ISSUER]), kind="guarantee_issuer_updated",
                   object_type="guarantee_issuer", object_id=issuer.id,
                   subject=_l("The platform now uses version %(version)s of your certificates and address "
                              "(%(changed)s)"),
                   version=version.version, changed=", ".join(sorted(changed)))
    return version


def set_issuer_admission(actor: Actor, issuer: Issuer, admitted: bool, reason: str = "") -> Issuer:
    """Admit again, or suspend, an issuer; a suspended issuer's products are not offered."""
    require_admin(actor)
    if issuer.is_admitted == admitted:
        return issuer
    issuer.is_admitted = admitted
    if admitted:
        issuer.admitted_at = now()
    db.session.flush()
    audit.record(actor, "guarantee.issuer.admission", "guarantee_issuer", issuer.id,
                 {"code": issuer.code, "is_admitted": admitted, "reason": (reason or "").strip()[:500]})
    return issuer


# -- products and rates ---------------------------------------------------------------------------

def add_product(actor: Actor, issuer: Issuer, *, code: str, name: str, minimum_fee: Any, rate_permille: Any,
                maximum_fee: Any = None, extra_validity_days: int = 0, claim_answer_days: int = 7,
                effective_from: datetime | None = None) -> GuaranteeProduct:
    """Add a product with its first rate (refused above the policy cap)."""
    require_admin_or_issuer(actor, issuer)
    code = _code(code)
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise _refuse("name", _l("Enter the product's name (at most 200 characters)."))
    minimum = _money(minimum_fee, "minimum_fee")
    maximum = _money(maximum_fee, "maximum_fee", required=False)
    rates.check_fees(minimum, maximum)
    if not isinstance(extra_validity_days, int) or not 0 <= extra_validity_days <= 365:
        raise _refuse("extra_validity_days", _l("Enter 0 to 365 days."))
    if not isinstance(claim_answer_days, int) or not 1 <= claim_answer_days <= 90:
        raise _refuse("claim_answer_days", _l("Enter 1 to 90 days."))
    if db.session.scalar(select(GuaranteeProduct).where(GuaranteeProduct.issuer_id == issuer.id,
                                                        GuaranteeProduct.code == code)):
        raise Conflict(_l("%(issuer)s already has a product with the code %(code_value)s."),
                       code="duplicate_product_code", fields={"code": [_l("Choose another code.")]},
                       issuer=issuer.name, code_value=code)
    rate, at = _checked_rate(rate_permille, effective_from)
    product = GuaranteeProduct(issuer_id=issuer.id, code=code, name=name, minimum_fee=minimum, maximum_fee=maximum,
                               extra_validity_days=extra_validity_days, claim_answer_days=claim_answer_days,
                               is_active=True, created_at=now())
    db.session.add(product)
    db.session.flush()
    version = ProductRate(product_id=product.id, rate_permille=rate, effective_from=at, created_at=now(),
                          created_by_id=actor.person_id)
    db.session.add(version)
    db.session.flush()
    audit.record(actor, "guarantee.product.add", "guarantee_product", product.id,
                 {"issuer": issuer.code, "code": code, "name": name, "minimum_fee": minimum, "maximum_fee": maximum,
                  "extra_validity_days": extra_validity_days, "claim_answer_days": claim_answer_days,
                  "rate_permille": rate, "effective_from": at, "rate_id": version.id})
    return product


def _checked_rate(rate_permille: Any, effective_from: datetime | None) -> tuple[Decimal, datetime]:
    rate = rates.check_rate(rates.as_decimal(rate_permille, "rate_permille"))
    at = _effective(effective_from)
    policy = policy_in_force(at)
    rates.check_under_cap(rate, policy.cap_permille if policy else None)
    for later in db.session.scalars(select(RatePolicy).where(RatePolicy.effective_from > at)):
        rates.check_under_cap(rate, later.cap_permille)  # a cap already announced binds too
    return rate, at


def set_product_rate(actor: Actor, product: GuaranteeProduct, rate_permille: Any,
                     effective_from: datetime | None = None) -> ProductRate:
    """Add a new rate version for ``product`` (refused above the cap in force at ``effective_from``)."""
    require_admin_or_issuer(actor, product.issuer)
    rate, at = _checked_rate(rate_permille, effective_from)
    if db.session.scalar(select(ProductRate).where(ProductRate.product_id == product.id,
                                                   ProductRate.effective_from == at)):
        raise Conflict(_l("A rate taking effect at that moment already exists; choose another time."),
                       code="duplicate_rate_version", fields={"effective_from": [_l("Choose another time.")]})
    previous = rate_in_force(product, at)
    version = ProductRate(product_id=product.id, rate_permille=rate, effective_from=at, created_at=now(),
                          created_by_id=actor.person_id)
    db.session.add(version)
    db.session.flush()
    audit.record(actor, "guarantee.product.rate", "guarantee_product", product.id,
                 {"rate_id": version.id, "rate_permille": rate, "effective_from": at,
                  "previous_rate_permille": previous.rate_permille if previous else None})
    return version


def set_product_active(actor: Actor, product: GuaranteeProduct, active: bool) -> GuaranteeProduct:
    """Offer a product again, or withdraw it from new orders (existing orders keep their terms)."""
    require_admin_or_issuer(actor, product.issuer)
    if product.is_active != active:
        product.is_active = active
        db.session.flush()
        audit.record(actor, "guarantee.product.active", "guarantee_product", product.id, {"is_active": active})
    return product


def set_rate_policy(actor: Actor, cap_permille: Any, reference_permille: Any,
                    effective_from: datetime | None = None) -> tuple[RatePolicy, list[GuaranteeProduct]]:
    """Add a policy version (cap and reference rate); return it and the products it makes not offerable.

    Rates above a lowered cap are never changed: those products drop out of the choices, with the
    reason, until their issuer sets a rate under the cap. Their issuers' staff are notified.
    """
    require_admin(actor)
    cap = rates.check_rate(rates.as_decimal(cap_permille, "cap_permille"), "cap_permille")
    reference = rates.check_rate(rates.as_decimal(reference_permille, "reference_permille"), "reference_permille")
    at = _effective(effective_from)
    if db.session.scalar(select(RatePolicy).where(RatePolicy.effective_from == at)):
        raise Conflict(_l("A policy taking effect at that moment already exists; choose another time."),
                       code="duplicate_policy_version", fields={"effective_from": [_l("Choose another time.")]})
    previous = policy_in_force(at)
    policy = RatePolicy(cap_permille=cap, reference_permille=reference, effective_from=at, created_at=now(),
                        created_by_id=actor.person_id)
    db.session.add(policy)
    db.session.flush()
    affected = []
    for product in db.session.scalars(select(GuaranteeProduct).order_by(GuaranteeProduct.id)):
        rate = rate_in_force(product, at)
        if rate is not None and rate.rate_permille > cap:
            affected.append((product, rate.rate_permille))
    audit.record(actor, "guarantee.rate_policy.set", "guarantee_rate_policy", policy.id,
                 {"cap_permille": cap, "reference_permille": reference, "effective_from": at,
                  "previous_cap_permille": previous.cap_permille if previous else None,
                  "not_offerable": [{"product_id": p.id, "issuer": p.issuer.code, "code": p.code,
                                     "rate_permille": r} for p, r in affected]})
    for product, rate in affected:
        notices.notify(notices.members([product.issuer.organisation_id], [Role.ISSUER]),
                       kind="guarantee_rate_above_cap", object_type="guarantee_product", object_id=product.id,
                       subject=_l("%(product)s is no longer offered: its rate %(rate)s is above the new cap "
                                  "%(cap)s"),
                       product=product.name, rate=rates.permille_text(rate), cap=rates.permille_text(cap))
    return policy, [p for p, _ in affected]
