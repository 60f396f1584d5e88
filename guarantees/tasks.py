"""Background jobs of the e-guarantee domain: the outbox, the release sweep, the deadline watch.

* ``guarantees.send_outbox`` (with a message id after a commit; without one every 30 s): deliver due
  messages to issuers, retrying with backoff (:mod:`guarantees.outbox`);
* ``guarantees.release_sweep`` (every 10 minutes): release the guarantees of cancelled or failed
  tenders, in case a signal was missed (:mod:`guarantees.release`);
* ``guarantees.watch_deadlines`` (hourly): flag late releases and unanswered claims; close the orders
  that are done (claim paid, letter expired: :mod:`guarantees.closing`); forget old nonces.

Small, idempotent, ids not objects; each task is its own transaction (the outbox commits per attempt).
"""

from __future__ import annotations

from celery.schedules import crontab

from core.tasks import periodic, task
from guarantees import outbox
from guarantees.callbacks import purge_nonces
from guarantees.closing import close_due
from guarantees.release import release_sweep
from guarantees.watch import watch_deadlines


@task(outbox.SEND_TASK)
def send_outbox(message_id: int | None = None) -> dict:
    """Deliver one message (``message_id``) or every due one; return what happened to each."""
    ids = [message_id] if message_id is not None else outbox.due_ids()
    return {str(i): outbox.deliver(i) for i in ids}


@task("guarantees.release_sweep")
def release_sweep_task() -> int:
    """Release guarantees of cancelled or failed tenders; return how many orders changed."""
    return release_sweep()


@task("guarantees.watch_deadlines")
def watch_deadlines_task() -> dict:
    """Flag overdue releases and claims; close orders that are done; purge old nonces."""
    result = watch_deadlines()
    return {"releases_overdue": result.releases_overdue, "claims_overdue": result.claims_overdue,
            "orders_closed": close_due(), "nonces_purged": purge_nonces()}


periodic(outbox.SEND_TASK, 30.0)
periodic("guarantees.release_sweep", 600.0)
periodic("guarantees.watch_deadlines", crontab(minute=7))
