"""Who may act: build the :class:`Actor` for the logged-in person, checking organisation membership."""

from __future__ import annotations

from flask import request
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from core.actor import Actor
from core.db import db
from core.errors import Forbidden, NotAuthenticated
from core.identity.models import ORG_ROLES, Organisation, Person, Role


def source_address() -> str | None:
    """The client's address as seen by this server (a proxy must be configured to pass it on)."""
    return request.remote_addr if request else None


DEVICE_HEADER = "X-Ebid-Client"  # the ebid client's installation id (``ebid client`` sends it)
MAX_DEVICE = 200


def device_of_request() -> str | None:
    """The client's self-description: its installation id (if any) and User-Agent, at most 200 characters."""
    if not request:
        return None
    parts = [request.headers.get(DEVICE_HEADER, "").strip(), request.headers.get("User-Agent", "").strip()]
    text = " | ".join(p for p in parts if p)
    return text[:MAX_DEVICE] or None


def actor_for(person: Person, role: Role | str | None = None, organisation_id: int | None = None,
              source: str | None = None, device: str | None = None) -> Actor:
    """Return the actor for ``person`` acting in ``role`` (for ``organisation_id`` if an organisation role).

    Raises Forbidden when the person does not hold the role, or is not a member of the organisation.
    """
    org: Organisation | None = None
    if role is not None:
        role = Role(role)
        grants = [g for g in person.grants if g.role == role]
        if not grants:
            raise Forbidden(_l("Your account does not have the role needed for this action (%(role)s)."),
                            code="missing_role", role=role.value)
        if role in ORG_ROLES:
            if organisation_id is None:
                if len(grants) > 1:
                    raise Forbidden(_l("Choose which organisation you act for."), code="organisation_required")
                organisation_id = grants[0].organisation_id
            if not any(g.organisation_id == organisation_id for g in grants):
                target = db.session.get(Organisation, organisation_id)
                raise Forbidden(_l("You are not a member of %(organisation)s and cannot act for it."),
                                code="not_a_member",
                                organisation=target.name if target else f"#{organisation_id}")
            org = db.session.get(Organisation, organisation_id)
    return Actor(person_id=person.id, name=person.name, role=role.value if role else None,
                 organisation_id=org.id if org else None, organisation_uscc=org.uscc if org else None,
                 source=source, device=device)


def current_actor(role: Role | str | None = None, organisation_id: int | None = None) -> Actor:
    """The actor for the current request's logged-in person (session cookie or API token)."""
    if not current_user or not current_user.is_authenticated:
        raise NotAuthenticated()
    return actor_for(current_user._get_current_object(), role, organisation_id, source=source_address(),
                     device=device_of_request())


def is_admin(actor: Actor) -> bool:
    """True for the platform itself (CLI, scheduler) and for a person acting as platform administrator."""
    return actor.is_system or actor.role == Role.ADMIN.value


def require_admin(actor: Actor) -> None:
    """Raise Forbidden unless ``actor`` may administer identities (organisations, persons, roles, the CA)."""
    if not is_admin(actor):
        raise Forbidden(_l("Only a platform administrator may do this."), code="admin_required")


def require_self_or_admin(actor: Actor, person: Person) -> None:
    """Raise Forbidden unless ``actor`` is ``person`` or an administrator."""
    if actor.person_id != person.id and not is_admin(actor):
        raise Forbidden(_l("You may only manage your own account."), code="not_your_account")
