"""Audit trail (审计日志): append-only, hash-chained record of every state-changing action.

Each event stores who acted (person, organisation, role, source address), when, on what object, which
action, and a JSON summary. Its ``hash`` is

    SHA-256("ebid-audit-v1\\n" || prev_hash || "\\n" || canonical JSON of the hashed fields)

where ``prev_hash`` is the previous event's ``hash`` (64 zeros for the first event, the genesis) and
``seq`` runs 1, 2, 3... without gaps. Editing, deleting or reordering rows therefore breaks the chain;
:func:`core.audit_verify.verify_chain` names the first broken link. Truncating the tail cannot be seen
from inside the chain: anchors (published heads, see :mod:`core.audit_verify`) catch it.

Appends are serialised so that concurrent transactions still build one unbroken chain: on PostgreSQL a
transaction-scoped advisory lock is taken before the head is read, on SQLite the transaction takes
the database's single write lock first; the unique ``seq`` is the backstop. The lock is held until
the caller's transaction ends, so services record their event last and views commit promptly.

Rows are append-only in the database itself: triggers refuse UPDATE and DELETE (TRUNCATE stays
possible for test teardown and is a privileged operation). Secrets never enter the trail: summaries
pass through :func:`scrub`, whatever the caller passes.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, String, inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.actor import Actor
from core.clock import now
from core.db import database_guard, db

GENESIS = "0" * 64
HASH_DOMAIN = b"ebid-audit-v1\n"
REDACTED = "[redacted]"

# Key fragments that mark a secret, matched case-insensitively anywhere in a summary key
# (``bidderPrivateKey``, ``share_2``, ``reset_token``...). Over-redaction is the safe failure.
SECRET_KEY_PARTS = (
    "password", "passwd", "passphrase", "secret", "private", "token", "share", "api_key", "apikey",
    "otp", "dek", "content_key", "credential", "cookie", "authorization", "signing_key",
)
_PEM_SECRET = re.compile(r"-----BEGIN [A-Z0-9 ]*(PRIVATE KEY|SECRET)[A-Z0-9 ]*-----")

# pg_advisory_xact_lock key for the chain head: the bytes "ebidaudt" as a signed 64-bit integer.
PG_HEAD_LOCK_KEY = int.from_bytes(b"ebidaudt", "big", signed=True)


class AuditEvent(db.Model):
    """One entry of the hash-chained audit trail (append-only)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_object", "object_type", "object_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    at: Mapped[dt.datetime] = mapped_column(index=True)
    actor_person_id: Mapped[int | None] = mapped_column(index=True)
    actor_name: Mapped[str] = mapped_column(String(200))
    actor_role: Mapped[str | None] = mapped_column(String(32))
    organisation_id: Mapped[int | None]
    organisation_uscc: Mapped[str | None] = mapped_column(String(18))
    source: Mapped[str | None] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    def __repr__(self) -> str:
        return f"<AuditEvent {self.seq} {self.object_type}:{self.object_id} {self.action}>"


@dataclass(frozen=True)
class Head:
    """The newest link of the chain: its ``seq`` (0 for an empty trail) and ``hash``."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, value: str) -> Head:
        """Parse ``SEQ:HASH`` (as printed by ``ebid audit head``); raise ValueError if malformed."""
        seq_text, sep, hash_text = value.strip().partition(":")
        hash_text = hash_text.strip().lower()
        if not sep or not seq_text.strip().isdigit() or not re.fullmatch(r"[0-9a-f]{64}", hash_text):
            raise ValueError(f"expected SEQ:HASH (a number, a colon, 64 hex digits), got {value.strip()!r}")
        return cls(int(seq_text), hash_text)


def _is_secret_key(key: Any) -> bool:
    lowered = str(key).lower().replace("-", "_")
    return any(part in lowered for part in SECRET_KEY_PARTS)


def scrub(value: Any) -> Any:
    """Return ``value`` as plain JSON data with every secret replaced by "[redacted]".

    Secret-looking keys are redacted at any depth, PEM private keys anywhere in a string are redacted,
    raw bytes are never kept (they are often key material), other values become JSON-native.
    """
    if isinstance(value, dict):
        return {str(k): REDACTED if _is_secret_key(k) else scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((scrub(v) for v in value), key=repr)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"{REDACTED} ({len(bytes(value))} bytes)"
    if isinstance(value, str):
        return REDACTED if _PEM_SECRET.search(value) else value
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, enum.Enum):
        return scrub(value.value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return scrub(str(value))


def canonical(data: Any) -> bytes:
    """Deterministic JSON bytes (sorted keys, no spaces, UTF-8) used for hashing."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False, default=str).encode()


HASHED_FIELDS = ("seq", "at", "actor_person_id", "actor_name", "actor_role", "organisation_id",
                 "organisation_uscc", "source", "object_type", "object_id", "action", "summary")
"""The columns covered by an event's hash (format version 1; see docs/audit-trail.md)."""


def hashed_fields(ev: Any) -> dict[str, Any]:
    """The fields covered by an event's hash, from a model instance or anything with those attributes."""
    fields = {name: getattr(ev, name) for name in HASHED_FIELDS}
    fields["at"] = fields["at"].isoformat()
    return fields


def event_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """The chain hash of an event with ``fields`` following the event whose hash is ``prev_hash``."""
    return hashlib.sha256(HASH_DOMAIN + prev_hash.encode() + b"\n" + canonical(fields)).hexdigest()


def _lock_head(session: Session) -> None:
    """Serialise appenders until the end of this transaction, before the head is read."""
    dialect = session.get_bind(mapper=AuditEvent).dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_HEAD_LOCK_KEY})
    elif dialect == "sqlite":
        # A write that touches no row still takes SQLite's write lock for the rest of the transaction
        # (waiting up to busy_timeout), so the head read below cannot race another appender.
        session.execute(text("UPDATE audit_events SET seq = seq WHERE 0"))


def current_head(session: Session | None = None) -> Head:
    """Return the chain's head as stored now (seq 0 and the genesis hash for an empty trail)."""
    session = session or db.session
    last = session.execute(select(AuditEvent.seq, AuditEvent.hash)
                           .order_by(AuditEvent.seq.desc()).limit(1)).first()
    return Head(last[0], last[1]) if last else Head(0, GENESIS)


# Called with every new event inside its transaction (e.g. the supervisors' live feed, which publishes
# after the commit); a listener must not write to the database.
_listeners: list[Callable[[AuditEvent], None]] = []


def add_listener(fn: Callable[[AuditEvent], None]) -> Callable[[AuditEvent], None]:
    """Install a function told of every new audit event (once per function)."""
    if fn not in _listeners:
        _listeners.append(fn)
    return fn


def record(actor: Actor, action: str, object_type: str, object_id: Any = None,
           summary: dict[str, Any] | None = None) -> AuditEvent:
    """Append an event to the trail in the current transaction (services call this, then flush).

    The chain head stays locked until the caller's transaction ends: record last, commit soon.
    """
    return record_many([(actor, action, object_type, object_id, summary)])[0]


def record_many(events: list[tuple[Actor, str, str, Any, dict[str, Any] | None]]) -> list[AuditEvent]:
    """Append several events, in order, with one lock of the chain's head and one flush.

    Each item is ``(actor, action, object_type, object_id, summary)`` as for :func:`record`.
    """
    session = db.session
    cleaned = [json.loads(canonical(scrub(summary or {}))) for *_, summary in events]
    _lock_head(session)
    head = current_head(session)
    seq, prev, at, out = head.seq, head.hash, now(), []
    for (actor, action, object_type, object_id, _), clean_summary in zip(events, cleaned, strict=True):
        seq += 1
        ev = AuditEvent(seq=seq, at=at, actor_person_id=actor.person_id, actor_name=actor.name,
                        actor_role=actor.role, organisation_id=actor.organisation_id,
                        organisation_uscc=actor.organisation_uscc, source=actor.source,
                        object_type=object_type, object_id=None if object_id is None else str(object_id),
                        action=action, summary=clean_summary, prev_hash=prev)
        ev.hash = prev = event_hash(prev, hashed_fields(ev))
        out.append(ev)
    session.add_all(out)
    session.flush()
    for ev in out:
        for listener in _listeners:
            listener(ev)
    return out


_PG_GUARD = (
    """
    CREATE OR REPLACE FUNCTION ebid_audit_events_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP USING ERRCODE = '42501';
    END
    $$
    """,
    "DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events",
    """
    CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION ebid_audit_events_append_only()
    """,
)
_SQLITE_GUARD = (
    """
    CREATE TRIGGER IF NOT EXISTS audit_events_no_update BEFORE UPDATE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused'); END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS audit_events_no_delete BEFORE DELETE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused'); END
    """,
)


@database_guard
def install_append_only_guard(engine: Engine) -> None:
    """Install the triggers refusing UPDATE and DELETE on ``audit_events`` (idempotent)."""
    if not inspect(engine).has_table(AuditEvent.__tablename__):
        return
    statements = {"postgresql": _PG_GUARD, "sqlite": _SQLITE_GUARD}.get(engine.dialect.name)
    if statements is None:
        raise RuntimeError(f"no append-only guard for the {engine.dialect.name} database")
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
