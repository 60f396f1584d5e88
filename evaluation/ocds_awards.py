"""The tender's awards for open data (OCDS ``awards``), from the publicity and the award (定标).

During publicity each lot's first candidate is a ``pending`` award (评定分离: the decision committee's
choice); after the award it is ``active``; a lot whose result has no candidate is ``unsuccessful``.
Installed into :mod:`bidding.ocds` at import (bidding sits below evaluation).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select

from bidding.models import Lot, Tender
from bidding.ocds import register_awards_provider
from core.db import db
from core.identity.models import Organisation
from evaluation.result_models import Award, Publicity


def tender_awards(tender: Tender) -> list[dict[str, Any]]:
    publicity = db.session.scalar(select(Publicity).where(Publicity.tender_id == tender.id))
    if publicity is None:
        return []
    awarded = {a.lot_id: a for a in db.session.scalars(select(Award).where(Award.tender_id == tender.id))}
    out = []
    for lot in publicity.candidates:
        row = db.session.get(Lot, lot["lot_id"])
        award = awarded.get(lot["lot_id"])
        base = {"id": f"{tender.code}-{lot['code']}", "title": f"{lot['code']} {lot['title']}", "lot": row}
        if award is not None and award.notified_at is not None:
            out.append({**base, "status": "active", "date": award.notified_at, "amount": award.amount,
                        "supplier": award.organisation})
        elif lot["candidates"]:
            chosen = lot.get("chosen") or lot["candidates"][0]["bid_opening_id"]
            first = next(c for c in lot["candidates"] if c["bid_opening_id"] == chosen)
            out.append({**base, "status": "pending", "date": publicity.starts_at, "amount": Decimal(first["price"]),
                        "supplier": db.session.get(Organisation, first["organisation_id"])})
        else:
            out.append({**base, "status": "unsuccessful", "date": publicity.starts_at, "amount": None,
                        "supplier": None})
    return out


register_awards_provider(tender_awards)
