"""Identity services: organisations (by USCC), persons, role grants. They validate, audit and flush."""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from core.actor import Actor
from core.audit import record
from core.db import db
from core.errors import NotFound, ValidationFailed
from core.identity import uscc as uscc_mod
from core.identity.access import require_admin
from core.identity.models import ORG_ROLES, Organisation, OrganisationKind, Person, Role, RoleGrant
from core.identity.passwords import hash_password

MIN_PASSWORD_LENGTH = 10
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize_email(email: str) -> str:
    return (email or "").strip().lower()


def validate_uscc(value: str) -> str:
    """Return the normalised USCC, or raise ValidationFailed naming what is wrong with it."""
    code = uscc_mod.normalize(value or "")
    problem = uscc_mod.problem(code)
    if problem is not None:
        raise ValidationFailed(problem.message, code="invalid_uscc", fields={"uscc": [problem.message]})
    return code


def validate_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        message = _l("The password must have at least %(count)s characters.", count=MIN_PASSWORD_LENGTH)
        raise ValidationFailed(message, code="weak_password", fields={"password": [message]})


def organisation_by_uscc(uscc: str) -> Organisation | None:
    return db.session.execute(select(Organisation).where(Organisation.uscc == uscc_mod.normalize(uscc))).scalar()


def person_by_email(email: str) -> Person | None:
    return db.session.execute(select(Person).where(func.lower(Person.email) == normalize_email(email))).scalar()


def register_organisation(actor: Actor, uscc: str, name: str, kind: OrganisationKind | str,
                          region: str | None = None, is_sme: bool = False) -> Organisation:
    """Register an organisation (单位) under its unified social credit code; the code must be new."""
    require_admin(actor)
    code = validate_uscc(uscc)
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(fields={"name": [_l("Enter the organisation's registered name.")]})
    try:
        kind = OrganisationKind(kind)
    except ValueError:
        message = _l("Unknown organisation kind '%(kind)s'; use one of: %(kinds)s.", kind=str(kind),
                     kinds=", ".join(k.value for k in OrganisationKind))
        raise ValidationFailed(message, fields={"kind": [message]}) from None
    if organisation_by_uscc(code) is not None:
        message = _l("An organisation with the unified social credit code %(uscc)s is already registered.",
                     uscc=code)
        raise ValidationFailed(message, code="duplicate_uscc", fields={"uscc": [message]})
    org = Organisation(uscc=code, name=name, kind=kind, region=region, is_sme=is_sme)
    db.session.add(org)
    db.session.flush()
    record(actor, "organisation_registered", "organisation", org.id,
           {"uscc": code, "name": name, "kind": kind.value, "region": region, "is_sme": is_sme})
    return org


def create_person(actor: Actor, email: str, name: str, password: str | None = None) -> Person:
    """Create a person with a login e-mail; without a password they can only log in by certificate."""
    require_admin(actor)
    email = normalize_email(email)
    if not _EMAIL_RE.match(email):
        message = _l("'%(email)s' is not an e-mail address.", email=email)
        raise ValidationFailed(message, fields={"email": [message]})
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(fields={"name": [_l("Enter the person's name.")]})
    if person_by_email(email) is not None:
        message = _l("A person with the e-mail %(email)s already exists.", email=email)
        raise ValidationFailed(message, code="duplicate_email", fields={"email": [message]})
    if password is not None:
        validate_password(password)
    person = Person(email=email, name=name, password_hash=hash_password(password) if password else None)
    db.session.add(person)
    db.session.flush()
    record(actor, "person_created", "person", person.id,
           {"email": email, "name": name, "has_password": password is not None})
    return person


def set_password(actor: Actor, person: Person, password: str) -> None:
    """Set ``person``'s password (administrators; the person themself through the account page)."""
    if actor.person_id != person.id:
        require_admin(actor)
    validate_password(password)
    person.password_hash = hash_password(password)
    db.session.flush()
    record(actor, "password_set", "person", person.id, {})


def set_enabled(actor: Actor, person: Person, is_enabled: bool) -> Person:
    """Enable or disable ``person``'s account; a disabled person cannot log in or use tokens."""
    require_admin(actor)
    if person.is_enabled != is_enabled:
        person.is_enabled = is_enabled
        db.session.flush()
        record(actor, "person_enabled" if is_enabled else "person_disabled", "person", person.id, {})
    return person


def _check_role_scope(role: Role, organisation: Organisation | None) -> None:
    if role in ORG_ROLES and organisation is None:
        message = _l("The role %(role)s is held on behalf of an organisation; name the organisation.",
                     role=role.value)
        raise ValidationFailed(message, code="organisation_required", fields={"organisation": [message]})
    if role not in ORG_ROLES and organisation is not None:
        message = _l("The role %(role)s is not held for an organisation; do not name one.", role=role.value)
        raise ValidationFailed(message, code="organisation_not_allowed", fields={"organisation": [message]})


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        message = _l("Unknown role '%(role)s'; use one of: %(roles)s.", role=str(role),
                     roles=", ".join(r.value for r in Role))
        raise ValidationFailed(message, fields={"role": [message]}) from None


def grant_role(actor: Actor, person: Person, role: Role | str, organisation: Organisation | None = None) -> RoleGrant:
    """Grant ``role`` to ``person`` (for ``organisation`` when it is an organisation role); idempotent."""
    require_admin(actor)
    role = _role(role)
    _check_role_scope(role, organisation)
    org_id = organisation.id if organisation else None
    for grant in person.grants:
        if grant.role == role and grant.organisation_id == org_id:
            return grant
    grant = RoleGrant(role=role, organisation=organisation)
    person.grants.append(grant)
    db.session.flush()
    record(actor, "role_granted", "person", person.id,
           {"role": role.value, "organisation_id": org_id,
            "organisation_uscc": organisation.uscc if organisation else None})
    return grant


def revoke_role(actor: Actor, person: Person, role: Role | str, organisation: Organisation | None = None) -> None:
    """Take ``role`` (for ``organisation``) away from ``person``."""
    require_admin(actor)
    role = _role(role)
    org_id = organisation.id if organisation else None
    grant = next((g for g in person.grants if g.role == role and g.organisation_id == org_id), None)
    if grant is None:
        raise NotFound(_l("%(person)s does not hold the role %(role)s here.", person=person.name, role=role.value))
    person.grants.remove(grant)
    db.session.flush()
    record(actor, "role_revoked", "person", person.id,
           {"role": role.value, "organisation_id": org_id,
            "organisation_uscc": organisation.uscc if organisation else None})
