"""Deadline watch (期限监控): releases not sent within 5 days of their trigger, claims not answered in time.

Run hourly by ``guarantees.watch_deadlines``. Each finding is flagged once on its row (idempotent),
recorded in the audit trail and notified to the people who must act.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core import audit
from core.actor import Actor
from core.clock import now
from core.db import db
from core.identity.models import Role
from guarantees import notices, protocol
from guarantees.lifecycle import OrderState
from guarantees.models import ClaimState, GuaranteeClaim, GuaranteeOrder, OutboundMessage, OutboxState

RELEASE_WITHIN = timedelta(days=5)  # 条例 §§35, 57: bonds are returned within 5 days
SYSTEM = Actor.system(source="scheduler")


@dataclass(frozen=True)
class WatchResult:
    releases_overdue: int
    claims_overdue: int


def _release_sent(order: GuaranteeOrder) -> bool:
    return db.session.scalar(select(OutboundMessage.id).where(
        OutboundMessage.order_id == order.id, OutboundMessage.type == protocol.RELEASE,
        OutboundMessage.state == OutboxState.SENT).limit(1)) is not None


def _staff(order: GuaranteeOrder):
    return notices.members([order.tender.tenderer_id, order.tender.agency_id], [Role.TENDERER, Role.AGENCY])


def watch_deadlines(at: datetime | None = None) -> WatchResult:
    """Flag overdue releases and unanswered claims; return how many were flagged now."""
    at = at or now()
    releases = 0
    stmt = select(GuaranteeOrder).where(GuaranteeOrder.state == OrderState.RELEASED,
                                        GuaranteeOrder.release_overdue_flagged_at.is_(None),
                                        GuaranteeOrder.release_trigger_at < at - RELEASE_WITHIN)
    for order in db.session.scalars(stmt.order_by(GuaranteeOrder.id)).all():
        if _release_sent(order):
            continue
        order.release_overdue_flagged_at = at
        releases += 1
        audit.record(SYSTEM, "guarantee.release.overdue", "guarantee_order", order.id,
                     {"order_no": order.order_no, "guarantee_no": order.guarantee_no,
                      "trigger_at": order.release_trigger_at, "reason": order.release_reason})
        notices.notify(notices.members([order.bidder_id], [Role.BIDDER]) + _staff(order) + notices.admins(),
                       kind="guarantee_release_overdue", object_type="guarantee_order", object_id=order.id,
                       subject=_l("The release of guarantee %(guarantee_no)s has not reached %(issuer)s within 5 days"),
                       body=_l("The release was triggered at %(at)s (%(reason)s). Check the issuer connection "
                               "(`ebid guarantees outbox`)."),
                       guarantee_no=order.guarantee_no or order.order_no, issuer=order.issuer.name,
                       at=order.release_trigger_at.isoformat(), reason=order.release_reason or "-")
    claims = 0
    stmt = select(GuaranteeClaim).where(GuaranteeClaim.state.in_([ClaimState.FILED, ClaimState.SENT]),
                                        GuaranteeClaim.overdue_flagged_at.is_(None),
                                        GuaranteeClaim.answer_due_at < at)
    for claim in db.session.scalars(stmt.order_by(GuaranteeClaim.id)).all():
        claim.overdue_flagged_at = at
        claims += 1
        order = claim.order
        audit.record(SYSTEM, "guarantee.claim.overdue", "guarantee_claim", claim.id,
                     {"claim_no": claim.claim_no, "order_no": order.order_no, "answer_due_at": claim.answer_due_at})
        notices.notify(_staff(order) + notices.admins(), kind="guarantee_claim_overdue",
                       object_type="guarantee_claim", object_id=claim.id,
                       subject=_l("%(issuer)s has not answered claim %(claim_no)s (due %(due)s)"),
                       issuer=order.issuer.name, claim_no=claim.claim_no, due=claim.answer_due_at.isoformat())
    db.session.flush()
    return WatchResult(releases, claims)
