"""Re-tender (重新招标) after a failed tender or failed lots (流标).

At the bid deadline a lot with fewer than three bids is not opened (招标投标法 §28, 条例 §44): when no lot
can open the whole tender fails, otherwise only those lots do. The tenderer and its agency are told at
once (a notification to their staff, in each person's language), the manage page lists the failed lots
with their reason, and :func:`retender` prepares the new procurement: a new draft with a new code that
copies the failed lots, the tender's settings and its issued documents. Dates are left empty: the
periods of the new tender run from its own publication. Each tender is re-tendered at most once (unless
that draft was cancelled); the link is kept in :class:`Retender`.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, ForeignKey, func, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bidding.models import Lot, Tender, TenderStatus
from bidding.policy import require_manager
from bidding.sealed_models import TenderLog
from bidding.services import LOT_FIELDS, add_document, create_tender, lots_failed, tender_failed
from core import audit
from core.actor import Actor
from core.clock import now
from core.db import db
from core.errors import Conflict, RuleViolation
from core.identity.models import Role
from core.notifications import members, notify
from core.storage import default_store

MAX_CODE = 40
SETTINGS = ("title", "description", "regime", "category", "is_mandatory", "region", "bid_validity_days",
            "evaluation_method", "guarantee_policy", "decryption_mode", "custodian_threshold")


class Retender(db.Model):
    """The link from a failed tender to the draft that re-tenders its failed lots."""

    __tablename__ = "tender_retenders"

    id: Mapped[int] = mapped_column(primary_key=True)
    original_id: Mapped[int] = mapped_column(ForeignKey("tenders.id"), index=True)
    new_id: Mapped[int] = mapped_column(ForeignKey("tenders.id"), unique=True)
    lot_codes: Mapped[list[str]] = mapped_column(JSON)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    created_at: Mapped[datetime] = mapped_column(default=now)

    new: Mapped[Tender] = relationship(foreign_keys=[new_id])


class RetenderRefused(RuleViolation):
    code = "retender_refused"
    default_message = _l("This tender cannot be re-tendered now.")


def failure_reason(bids: int) -> Any:
    """Why a lot failed at the deadline, in the reader's language."""
    return _l("%(n)s bid(s) at the bid deadline; at least 3 are needed to open a lot (招标投标法 §28).", n=bids)


def failed_lots(tender: Tender) -> list[dict[str, Any]]:
    """The lots not opened at the deadline: ``{"code", "title", "bids", "reason"}``, in lot order."""
    log = db.session.get(TenderLog, tender.id)
    closing = ((log.closing or {}).get("lots") or {}) if log is not None else {}
    return [{"code": lot.code, "title": lot.title, "bids": closing[lot.code]["bids"],
             "reason": failure_reason(closing[lot.code]["bids"])}
            for lot in tender.lots if lot.code in closing and not closing[lot.code]["opened"]]


def retender_of(tender: Tender) -> Retender | None:
    """The live re-tender of ``tender`` (its draft not cancelled), if any."""
    return db.session.scalar(select(Retender).join(Tender, Tender.id == Retender.new_id).where(
        Retender.original_id == tender.id, Tender.status != TenderStatus.CANCELLED).order_by(Retender.id.desc()))


def next_code(code: str) -> str:
    """``CODE-R1`` for a first re-tender, ``CODE-R2`` for a re-tender of that, …; unused and at most 40 chars."""
    match = re.fullmatch(r"(.*)-R(\d+)", code)
    base, n = (match.group(1), int(match.group(2)) + 1) if match else (code, 1)
    while True:
        suffix = f"-R{n}"
        candidate = base[:MAX_CODE - len(suffix)] + suffix
        if not db.session.scalar(select(func.count()).select_from(Tender).where(Tender.code == candidate)):
            return candidate
        n += 1


def _total(lots: list[Lot], name: str, fallback: Decimal | None) -> Decimal | None:
    values = [getattr(lot, name) for lot in lots]
    return sum(values, Decimal(0)) if values and all(v is not None for v in values) else fallback


def _draft_data(tender: Tender, lots: list[Lot], code: str) -> dict[str, Any]:
    every = len(lots) == len(tender.lots)
    data: dict[str, Any] = {name: getattr(tender, name) for name in SETTINGS}
    data.update(code=code, tenderer_id=tender.tenderer_id, agency_id=tender.agency_id,
                custodian_ids=[c.person_id for c in tender.custodians],
                estimated_price=tender.estimated_price if every else _total(lots, "estimated_price",
                                                                              tender.estimated_price),
                ceiling_price=tender.ceiling_price if every else _total(lots, "ceiling_price", tender.ceiling_price),
                lots=[{name: getattr(lot, name) for name in LOT_FIELDS} for lot in lots])
    data["regime"], data["category"] = tender.regime.value, tender.category.value
    data["decryption_mode"] = tender.decryption_mode.value if tender.decryption_mode else None
    return data


def retender(actor: Actor, tender: Tender) -> Tender:
    """Create the draft that re-tenders the failed lots of ``tender`` (tenderer or agency staff); audited."""
    require_manager(actor, tender)
    lots_out = failed_lots(tender)
    if not lots_out:
        raise RetenderRefused(_l("Tender %(tender)s has no failed lot: only lots with fewer than three bids at the "
                                 "deadline are re-tendered."), code="nothing_failed", tender=tender.code)
    existing = retender_of(tender)
    if existing is not None:
        raise Conflict(_l("Tender %(tender)s was already re-tendered as %(new)s; continue with that draft."),
                       code="already_retendered", tender=tender.code, new=existing.new.code)
    codes = [lot["code"] for lot in lots_out]
    lots = [lot for lot in tender.lots if lot.code in codes]
    new = create_tender(actor, _draft_data(tender, lots, next_code(tender.code)))
    store = default_store()
    for doc in tender.documents:
        if doc.published_at is None or doc.is_withdrawn:
            continue
        with store.open(doc.sha256) as stream:  # content-addressed: the same bytes, stored once
            add_document(actor, new, stream=stream, filename=doc.filename, content_type=doc.content_type,
                         kind=doc.kind)
    db.session.add(Retender(original_id=tender.id, new_id=new.id, lot_codes=codes, created_by_id=actor.person_id))
    db.session.flush()
    audit.record(actor, "tender.retender", "tender", tender.id,
                 {"new_tender_id": new.id, "new_code": new.code, "lots": codes,
                  "documents": [d.sha256 for d in new.documents]})
    return new


# --- telling the tenderer and the agency -------------------------------------------------------------------

def notify_failure(tender: Tender, codes: list[str]) -> int:
    """Tell the staff of the tenderer and the agency which lots failed and that they can re-tender."""
    whole = tender.status == TenderStatus.FAILED
    subject = _l("Tender %(code)s failed (流标): re-tender it") if whole else \
        _l("Lots %(lots)s of tender %(code)s failed (流标): re-tender them")
    body = _l("At the bid deadline lots %(lots)s of tender %(code)s had fewer than three bids and were not opened "
              "(招标投标法 §28). On the tender's management page, choose Re-tender to prepare a new draft with the "
              "same lots, settings and documents.")
    persons = members([tender.tenderer_id, tender.agency_id], [Role.TENDERER, Role.AGENCY])
    return notify(persons, kind="tender_failed", object_type="tender", object_id=tender.id, subject=subject,
                  body=body, code=tender.code, lots=", ".join(codes))


@tender_failed.connect
def _on_tender_failed(tender: Tender, **_extra: Any) -> None:
    notify_failure(tender, [lot["code"] for lot in failed_lots(tender)])


@lots_failed.connect
def _on_lots_failed(tender: Tender, *, lots: list[str], **_extra: Any) -> None:
    notify_failure(tender, lots)


__all__ = ["Retender", "RetenderRefused", "failed_lots", "next_code", "notify_failure", "retender", "retender_of"]
