"""The commit boundary for tender writes that can lose a race (publish, amend, edit, cancel).

Shared by the JSON API and the pages: the caller's work runs and is committed; when a concurrent
write won (optimistic lock on ``Tender.version``), the transaction is rolled back and the refused
attempt is recorded in the audit trail in a fresh transaction, so the trail says what happened.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm.exc import StaleDataError

from bidding.models import Tender
from bidding.services import record_refused
from core.actor import Actor
from core.db import db
from core.errors import Conflict

R = TypeVar("R")


def commit_guarded(actor: Actor, action: str, tender_id: int, version: int | None, work: Callable[[], R]) -> R:
    """Run and commit ``work``; on a lost race record ``<action>.conflict`` and raise :class:`Conflict`."""
    try:
        result = work()
        db.session.commit()
        return result
    except (Conflict, StaleDataError) as exc:
        db.session.rollback()
        stored = db.session.get(Tender, tender_id)
        record_refused(actor, f"{action}.conflict", tender_id, {
            "expected_version": version, "current_version": stored.version if stored else None,
            "error": getattr(exc, "code", "conflict")})
        db.session.commit()
        if isinstance(exc, Conflict):
            raise
        raise Conflict() from exc
