"""Background jobs of bidding (Celery): close tenders at their bid deadline.

The periodic task runs every 10 s; :func:`close_due_on_request` does the same check at the start of
every request, so a deadline is enforced even when the scheduler is late (and submissions check the
clock themselves in any case). Each tender is closed in its own transaction, lock first.
"""

from __future__ import annotations

import logging

from flask import request

from bidding.sealed_closing import close_tender, due_tender_ids
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


def close_due_on_request() -> None:
    """before_request: close what is due before the request sees it (never fails the request)."""
    if request.endpoint in (None, "static"):
        return
    try:
        if due_tender_ids(now()):
            close_due(Actor.system(source="request"))
    except Exception:
        db.session.rollback()
        log.exception("closing due tenders before a request failed")
