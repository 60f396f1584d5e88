"""Running the collusion screens (串通投标预警) on a tender and warning the supervisors.

A run gathers the facts (:mod:`supervision.facts`), applies the pure screens (:mod:`supervision.screens`)
and keeps what they found with the digest of the facts. It runs when an opening closes (the record is
published: every bid is decrypted) and whenever a supervisor asks; a run whose findings differ from the
previous one notifies the supervisors. Findings are warnings for people, never an outcome.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from bidding.models import Tender
from bidding.opening import opening_closed
from core import audit
from core.actor import Actor
from core.db import db
from core.errors import NotFound
from core.notifications import notify, supervisors
from core.tasks import enqueue, periodic, task
from supervision.facts import facts_digest, gather
from supervision.models import ScreenRun
from supervision.screens import screen_tender

SCREEN_TASK = "supervision.screen_tender"
SWEEP_TASK = "supervision.screen_closed_openings"


def finding_dict(finding: Any) -> dict[str, Any]:
    data = asdict(finding)
    data["bid_ids"] = list(data["bid_ids"])
    return data


def latest_run(tender_id: int) -> ScreenRun | None:
    return db.session.scalar(select(ScreenRun).where(ScreenRun.tender_id == tender_id)
                             .order_by(ScreenRun.id.desc()).limit(1))


def run_screens(actor: Actor, tender_id: int, trigger: str = "manual") -> ScreenRun:
    """Screen the tender's opened bids now; store the run; warn the supervisors when the findings changed."""
    tender = db.session.get(Tender, tender_id)
    if tender is None:
        raise NotFound(_l("This tender does not exist."))
    facts = gather(tender)
    exclude = frozenset(d.sha256 for d in tender.documents)
    findings = [finding_dict(f) for f in screen_tender(facts, exclude_sha256=exclude)]
    previous = latest_run(tender.id)
    run = ScreenRun(tender_id=tender.id, facts_sha256=facts_digest(facts), bids=len(facts), findings=findings,
                    trigger=trigger)
    db.session.add(run)
    db.session.flush()
    audit.record(actor, "supervision.screened", "tender", tender.id,
                 {"run": run.id, "facts_sha256": run.facts_sha256, "bids": run.bids,
                  "findings": sorted({f["code"] for f in findings})})
    if findings and (previous is None or previous.findings != findings):
        notify(supervisors(), kind="collusion_warning", object_type="tender", object_id=tender.id,
               subject=_l("Collusion screens flag %(n)s sign(s) in tender %(tender)s."),
               body=_l("Open the tender's screens in the supervision console to read the evidence."),
               n=len(findings), tender=tender.code)
    return run


@task(SCREEN_TASK)
def screen_tender_task(tender_id: int) -> int:
    """Screen one tender (queued when its opening closes)."""
    return run_screens(Actor.system(source="scheduler"), tender_id, trigger="opening").id


@task(SWEEP_TASK)
def screen_closed_openings() -> int:
    """The safety net at scale: screen every closed opening that has no run yet."""
    from bidding.opening_models import OpeningSession

    done = set(db.session.scalars(select(ScreenRun.tender_id)))
    due = [t for t in db.session.scalars(select(OpeningSession.tender_id).where(OpeningSession.closed_at.is_not(None)))
           if t not in done]
    for tender_id in due:
        run_screens(Actor.system(source="scheduler"), tender_id, trigger="opening")
        db.session.commit()
    return len(due)


periodic(SWEEP_TASK, 300.0)


@opening_closed.connect
def _on_opening_closed(tender_id: int, **extra: Any) -> None:
    enqueue(screen_tender_task, tender_id)
