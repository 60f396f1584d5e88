"""Background jobs of bidding (Celery): close tenders at their bid deadline.

The periodic task runs every 10 s; :func:`close_due_on_request` does the same check at the start of
every request, so a deadline is enforced even when the scheduler is late (and submissions check the
clock themselves in any case). Each tender is closed in its own transaction, lock first.
"""

from __future__ import annotations

import itertools
import logging
from datetime import timedelta

from flask import current_app, request
from sqlalchemy import event

from bidding.models import Tender
from bidding.sealed_closing import close_tender, due_tender_ids, next_deadline
from core.actor import Actor
from core.clock import now
from core.db import db
from core.tasks import periodic, task

log = logging.getLogger(__name__)

CLOSE_DUE = "bids.close_due_tenders"


def close_due(actor: Actor) -> dict[int, str]:
    """Close every tender whose deadline has passed; commit each; return ``{tender_id: outcome}``."""
    results: dict[int, str] = {}
    for tender_id in due_tender_ids(now()):
        db.session.rollback()  # the tender lock must be the transaction's first statement
        try:
            outcome = close_tender(actor, tender_id)
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("closing tender %s at its deadline failed; the next run retries", tender_id)
            continue
        if outcome:
            results[tender_id] = outcome
    return results


@task(CLOSE_DUE)
def close_due_tenders() -> dict[str, str]:
    """Close tenders at their bid deadline (idempotent)."""
    return {str(k): v for k, v in close_due(Actor.system(source="scheduler")).items()}


periodic(CLOSE_DUE, 10.0)


# The request-time check runs its query at most every DUE_CHECK_EVERY per process, and sooner when the
# earliest known deadline arrives or a tender changes in this process. A tender whose deadline another
# process moved earlier is closed at most this much later on requests (the periodic task and the clock
# check of every submission do not depend on it).
DUE_CHECK_EVERY = timedelta(seconds=2)
_tender_writes = itertools.count()
_generation = [0]


@event.listens_for(Tender, "after_insert")
@event.listens_for(Tender, "after_update")
def _tender_changed(_mapper, _connection, _target) -> None:
    _generation[0] = next(_tender_writes) + 1


def _due_check_needed(at) -> bool:
    seen = current_app.extensions.get("ebid.due_check")
    if seen is None:
        return True
    checked_at, next_deadline, generation = seen
    return (generation != _generation[0] or not checked_at <= at < checked_at + DUE_CHECK_EVERY
            or (next_deadline is not None and at >= next_deadline))


def close_due_on_request() -> None:
    """before_request: close what is due before the request sees it (never fails the request)."""
    if request.endpoint in (None, "static"):
        return
    at = now()
    if not _due_check_needed(at):
        return
    try:
        generation = _generation[0]
        if due_tender_ids(at):
            close_due(Actor.system(source="request"))
        current_app.extensions["ebid.due_check"] = (at, next_deadline(at), generation)
    except Exception:
        db.session.rollback()
        log.exception("closing due tenders before a request failed")
