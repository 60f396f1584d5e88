"""Audit trail (审计日志): append-only, hash-chained record of every state-changing action.

Each row carries the SHA-256 of the previous row; ``verify_chain`` names the first broken link.
Secrets never enter the trail: summaries pass through :func:`scrub` first.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from core.actor import Actor
from core.clock import now
from core.db import db

GENESIS = "0" * 64
SECRET_KEYS = ("password", "passphrase", "secret", "private_key", "token", "share", "api_key", "otp")


class AuditEvent(db.Model):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[datetime]
    actor_person_id: Mapped[int | None]
    actor_name: Mapped[str] = mapped_column(String(200))
    actor_role: Mapped[str | None] = mapped_column(String(32))
    organisation_id: Mapped[int | None]
    organisation_uscc: Mapped[str | None] = mapped_column(String(18))
    source: Mapped[str | None] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(40), index=True)
    object_id: Mapped[str | None] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


def scrub(value: Any) -> Any:
    """Return ``value`` with any secret-looking key replaced by "[redacted]"."""
    if isinstance(value, dict):
        return {k: "[redacted]" if any(s in str(k).lower() for s in SECRET_KEYS) else scrub(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def canonical(event_fields: dict[str, Any]) -> bytes:
    return json.dumps(event_fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode()


def event_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(fields)).hexdigest()


def hashed_fields(ev: AuditEvent) -> dict[str, Any]:
    return {
        "seq": ev.seq, "at": ev.at.isoformat(), "actor_person_id": ev.actor_person_id,
        "actor_name": ev.actor_name, "actor_role": ev.actor_role, "organisation_id": ev.organisation_id,
        "organisation_uscc": ev.organisation_uscc, "source": ev.source, "object_type": ev.object_type,
        "object_id": ev.object_id, "action": ev.action, "summary": ev.summary,
    }


def record(actor: Actor, action: str, object_type: str, object_id: Any = None,
           summary: dict[str, Any] | None = None) -> AuditEvent:
    """Append an event to the trail in the current transaction (services call this, then flush)."""
    session = db.session
    last = session.execute(select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    ev = AuditEvent(seq=seq, at=now(), actor_person_id=actor.person_id, actor_name=actor.name,
                    actor_role=actor.role, organisation_id=actor.organisation_id,
                    organisation_uscc=actor.organisation_uscc, source=actor.source,
                    object_type=object_type, object_id=None if object_id is None else str(object_id),
                    action=action, summary=scrub(json.loads(canonical(summary or {}))), prev_hash=prev)
    ev.hash = event_hash(prev, hashed_fields(ev))
    session.add(ev)
    session.flush()
    return ev
