"""Issuer administration for the platform's administrators (出函机构管理): the verbs the web pages need
beyond :mod:`guarantees.services`, and the read models of the administration pages.

An issuer's name is the registered name of its organisation (单位). Admitting an issuer from a form
finds the organisation by its unified social credit code (统一社会信用代码) or registers it, then admits
it; renaming changes the organisation's registered name. Both audit, flush and never commit, like every
verb of :mod:`guarantees.services`, which does the rest (certificates, endpoint, products, rates, cap).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core import audit
from core.actor import Actor
from core.clock import now
from core.db import db
from core.errors import ValidationFailed
from core.identity import organisation_by_uscc, register_organisation
from core.identity.models import OrganisationKind, Person
from guarantees import rates
from guarantees.issuer_certs import CertificateSummary, current_version, describe_certificate
from guarantees.models import GuaranteeProduct, Issuer, IssuerCertificate, IssuerKind, ProductRate, RatePolicy
from guarantees.services import (
    admit_issuer,
    api_url,
    check_reason,
    product_availability,
    rate_in_force,
    require_admin,
    update_issuer,
)

MAX_NAME_LENGTH = 200


def _refuse(field: str, message: Any) -> ValidationFailed:
    return ValidationFailed(message, fields={field: [message]})


def issuer_name(value: str) -> str:
    """The stripped registered name of an issuer (1 to 200 characters), else a refusal on ``name``."""
    name = (value or "").strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise _refuse("name", _l("Enter the issuer's registered name (at most 200 characters)."))
    return name


# -- verbs ----------------------------------------------------------------------------------------

def admit_new_issuer(actor: Actor, *, uscc: str, name: str, code: str, kind: IssuerKind | str, api_base_url: str,
                     message_cert_pem: str, letter_trust_root_pem: str) -> Issuer:
    """Admit an issuer by its credit code: register its organisation if new, then admit it (one transaction).

    An organisation already registered under ``uscc`` is admitted under its registered name; a
    different ``name`` is refused rather than silently ignored.
    """
    require_admin(actor)
    name = issuer_name(name)
    organisation = organisation_by_uscc(uscc or "")
    if organisation is None:
        organisation = register_organisation(actor, uscc, name, OrganisationKind.ISSUER)
    elif organisation.name != name:
        raise _refuse("name", _l("The organisation with the credit code %(uscc)s is registered as %(registered)s; "
                                 "enter that name (rename the issuer after admitting it).",
                                 uscc=organisation.uscc, registered=organisation.name))
    return admit_issuer(actor, organisation, code=code, kind=kind, api_base_url=api_base_url,
                        message_cert_pem=message_cert_pem, letter_trust_root_pem=letter_trust_root_pem)


def rename_issuer(actor: Actor, issuer: Issuer, name: str, reason: str) -> Issuer:
    """Change the registered name of the issuer's organisation, saying why (audited with the old name)."""
    require_admin(actor)
    name = issuer_name(name)
    reason = check_reason(reason)
    previous = issuer.name
    if name == previous:
        raise _refuse("name", _l("The issuer is already called %(name)s; enter the new name.", name=previous))
    issuer.organisation.name = name
    db.session.flush()
    audit.record(actor, "guarantee.issuer.rename", "guarantee_issuer", issuer.id,
                 {"code": issuer.code, "organisation_uscc": issuer.organisation.uscc, "name": name,
                  "previous_name": previous, "reason": reason})
    return issuer


def change_issuer_details(actor: Actor, issuer: Issuer, *, name: str, api_base_url: str,
                          reason: str) -> list[str]:
    """Rename the issuer and/or move its API address (a new certificate version); return what changed."""
    require_admin(actor)
    new_name = issuer_name(name)
    url = api_url(api_base_url)
    changed = [field for field, old, new in (("name", issuer.name, new_name), ("api_base_url", issuer.api_base_url,
                                                                              url)) if old != new]
    if not changed:
        raise _refuse("name", _l("Nothing changes: enter a new name or a new API address."))
    if "api_base_url" in changed:
        update_issuer(actor, issuer, api_base_url=url, reason=reason)
    if "name" in changed:
        rename_issuer(actor, issuer, new_name, reason)
    return changed


# -- read models ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProductRow:
    """A product as the administration shows it: the rate in force now and whether it is offered."""

    product: GuaranteeProduct
    rate: ProductRate | None
    availability: rates.Availability


@dataclass(frozen=True)
class IssuerRow:
    """An issuer with its current certificate version (both certificates read) and its products."""

    issuer: Issuer
    version: IssuerCertificate | None
    message_cert: CertificateSummary | None
    trust_root: CertificateSummary | None
    products: list[ProductRow]


def product_row(product: GuaranteeProduct, at: datetime | None = None) -> ProductRow:
    at = at or now()
    return ProductRow(product, rate_in_force(product, at), product_availability(product, at))


def issuer_row(issuer: Issuer, at: datetime | None = None) -> IssuerRow:
    at = at or now()
    return IssuerRow(issuer, current_version(issuer), describe_certificate(issuer.message_cert_pem),
                     describe_certificate(issuer.letter_trust_root_pem),
                     [product_row(p, at) for p in issuer.products])


def issuer_rows(at: datetime | None = None) -> list[IssuerRow]:
    """Every issuer (admitted or suspended), by code."""
    at = at or now()
    return [issuer_row(i, at) for i in db.session.scalars(select(Issuer).order_by(Issuer.code))]


def rate_policies() -> list[RatePolicy]:
    """Every rate-policy version, newest first (scheduled ones included)."""
    return list(db.session.scalars(select(RatePolicy).order_by(RatePolicy.effective_from.desc())))


def person_names(ids: Iterable[int | None]) -> dict[int, str]:
    """Names of the persons behind ``created_by_id`` columns (None: the platform itself, e.g. the CLI)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = db.session.execute(select(Person.id, Person.name).where(Person.id.in_(wanted)))
    return {person_id: name for person_id, name in rows}


__all__ = ["IssuerRow", "ProductRow", "admit_new_issuer", "change_issuer_details", "issuer_name",
           "issuer_row", "issuer_rows", "person_names", "product_row", "rate_policies", "rename_issuer"]
