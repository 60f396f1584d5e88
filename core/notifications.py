"""Notifications (通知): messages to persons about things that concern them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from flask import current_app
from flask_babel import force_locale
from sqlalchemy import ForeignKey, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import now
from core.db import db
from core.identity.models import Person, Role, RoleGrant


class Notification(db.Model):
    """A message to a person (amendment published, answer published, objection answered)."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[int | None]
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=now)
    read_at: Mapped[datetime | None]


def members(organisation_ids: Iterable[int | None], roles: Iterable[Role]) -> list[Person]:
    """Enabled persons holding one of ``roles`` for one of the organisations."""
    ids = [i for i in organisation_ids if i is not None]
    if not ids:
        return []
    stmt = (select(Person).join(RoleGrant, RoleGrant.person_id == Person.id)
            .where(RoleGrant.organisation_id.in_(ids), RoleGrant.role.in_(list(roles)),
                   Person.is_enabled.is_(True)).distinct().order_by(Person.id))
    return list(db.session.scalars(stmt))


def supervisors() -> list[Person]:
    """Enabled persons holding the supervisor role (监督人员)."""
    stmt = (select(Person).join(RoleGrant, RoleGrant.person_id == Person.id)
            .where(RoleGrant.role == Role.SUPERVISOR, Person.is_enabled.is_(True)).distinct().order_by(Person.id))
    return list(db.session.scalars(stmt))


def admins() -> list[Person]:
    stmt = (select(Person).join(RoleGrant, RoleGrant.person_id == Person.id)
            .where(RoleGrant.role == Role.ADMIN, Person.is_enabled.is_(True)).distinct().order_by(Person.id))
    return list(db.session.scalars(stmt))


def notify(persons: Iterable[Person], *, kind: str, object_type: str, object_id: int, subject: Any,
           body: Any = "", **params: Any) -> int:
    """One notification per person, rendered in that person's language; return how many."""
    default = current_app.config.get("BABEL_DEFAULT_LOCALE", "zh_CN")
    seen: set[int] = set()
    for person in persons:
        if person.id in seen:
            continue
        seen.add(person.id)
        with force_locale(person.locale or default):
            rendered = {k: str(v) for k, v in params.items()}
            db.session.add(Notification(person_id=person.id, object_type=object_type, object_id=object_id,
                                        kind=kind, subject=(str(subject) % rendered)[:300],
                                        body=str(body) % rendered if body else ""))
    db.session.flush()
    return len(seen)
