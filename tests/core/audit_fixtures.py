"""Shared helpers for the audit-trail tests: make events, tamper as a database administrator would."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from core.actor import Actor
from core.audit import record
from core.db import db, install_database_guards

ALICE = Actor(person_id=7, name="Alice Zhang", role="agency", organisation_id=3,
              organisation_uscc="91370200MA3C4XYZ0K", source="203.0.113.9")
BOB = Actor(person_id=8, name="Bob Li", role="supervisor", source="198.51.100.4")


def make_events(n: int, actor: Actor = ALICE, object_type: str = "tender", action: str = "tender.updated"):
    """Record ``n`` events (object ids 1..n) and commit; return them."""
    events = [record(actor, action, object_type, i, {"step": i, "note": f"change {i}"}) for i in range(1, n + 1)]
    db.session.commit()
    return events


def sql(statement: str, **params) -> None:
    """Run raw SQL in its own transaction, as a DBA at a psql prompt would.

    The test's own session commits first: on PostgreSQL an open read transaction would make the
    DBA's DDL wait for it forever.
    """
    db.session.commit()
    with db.engine.begin() as conn:
        conn.execute(text(statement), params)


def drop_guards() -> None:
    if db.engine.dialect.name == "postgresql":
        sql("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
    else:
        sql("DROP TRIGGER IF EXISTS audit_events_no_update")
        sql("DROP TRIGGER IF EXISTS audit_events_no_delete")


@pytest.fixture(name="tamper")
def tamper_fixture(app):
    """Drop the append-only triggers for a test (as a DBA could), and put them back afterwards."""
    drop_guards()
    yield sql
    db.session.rollback()
    install_database_guards(db.engine)
