"""Background job of the opening (Celery beat, every 5 s): sessions, windows' ends, queued decryptions.

The same step runs on the opening API's requests (:mod:`bidding.opening_api`), so the opening advances
even when the scheduler is late. Each bid is claimed and committed on its own (:mod:`bidding.opening_process`).
"""

from __future__ import annotations

from bidding.opening_process import advance_all
from core.actor import Actor
from core.tasks import periodic, task

ADVANCE = "bids.advance_openings"


@task(ADVANCE)
def advance_openings() -> dict[str, int]:
    """Advance every opening (idempotent, safe with several workers)."""
    return {str(k): v for k, v in advance_all(Actor.system(source="scheduler")).items()}


periodic(ADVANCE, 5.0)
