"""The opening record (开标记录) in the hall page: what each person sees of it and what they may do there.

:func:`panel_actions` is the pure rule (table-tested); :func:`record_panel` gathers its inputs and the record
as the record API shows it (``record_service.record_view``). The page part is
``templates/bidding/record_part.html``; its script (``ebid/static/hall/record.js``) calls the record API.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bidding import opening, record_service
from bidding.hall_state import BIDDER, HOST
from bidding.models import Tender
from core.clock import beijing
from core.db import db
from core.identity.models import Organisation

BUILD_PHASES = frozenset({"decrypted", "record"})
SIGNED_AT = {"Host": "host_signed_at", "Supervisor": "supervisor_signed_at"}
TIME_KEYS = ("built_at", "window_ends_at", "window_closed_at", "host_signed_at", "supervisor_signed_at",
             "published_at")


def own_response(record: Mapping[str, Any] | None, uscc: str | None) -> str | None:
    """The bidder's answer to the record (``confirmed``/``objected``), None before answering or without a record."""
    return {r["uscc"]: r["kind"] for r in record["responses"]}.get(uscc) if record else None


def panel_actions(*, phase: str | None, role: str, record: Mapping[str, Any] | None,
                  acting_uscc: str | None = None) -> dict[str, bool]:
    """What the panel shows and offers to one person.

    ``record`` is ``record_view`` (None before the record is built); ``acting_uscc`` the bidder's organisation.
    The record services check every step again; this only decides which forms the page shows.
    """
    status = record["status"] if record else None
    bidders = {row["uscc"] for row in record["rows"]} if record else set()
    own = own_response(record, acting_uscc)
    in_record = role == BIDDER and acting_uscc is not None and acting_uscc in bidders
    window_open = status == "confirming"
    field = record.get("my_field") if record else None
    can_build = record is None and role == HOST and phase in BUILD_PHASES
    return {
        "show": record is not None or can_build,
        "build": can_build,
        "confirm": window_open and in_record and own is None,
        "object": window_open and in_record and own in (None, "objected"),
        "answer": role == HOST and status in ("confirming", "answering"),
        "sign": status == "signing" and field in SIGNED_AT and not record.get(SIGNED_AT[field]),
        "signed_pdf": status == "published",
    }


def _bjt(value: str | None) -> str:
    return beijing(datetime.fromisoformat(value)).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def record_panel(tender: Tender, role: str, person_id: int, organisation_id: int | None) -> dict[str, Any]:
    """The context of the record part for one person: ``record`` (or None), ``can``, ``times``, ``own``.

    A confirmation window found due is closed here (as the record API does on every read), so the page shows
    the record as it stands; the caller commits.
    """
    session = opening.get_session(tender.id)
    phase = session.phase.value if session is not None else None
    row = record_service.get_record(tender.id)
    record = None
    if row is not None:
        record = record_service.record_view(record_service.tick(tender.id), person_id)
    uscc = None
    if role == BIDDER and organisation_id is not None:
        org = db.session.get(Organisation, organisation_id)
        uscc = org.uscc if org is not None else None
    return {"record": record, "tender_id": tender.id, "phase": phase, "hall_role": role,
            "own_response": own_response(record, uscc),
            "can": panel_actions(phase=phase, role=role, record=record, acting_uscc=uscc),
            "times": {key: _bjt(record.get(key)) for key in TIME_KEYS} if record else {}}
