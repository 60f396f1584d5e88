"""The audit trail for supervisors and administrators (审计日志查询): read-only, filterable, verified."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, current_app, render_template, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import Select, select

from core.audit import AuditEvent
from core.audit_verify import ChainVerification, anchors_path, verify_with_anchors
from core.clock import BEIJING, beijing, now
from core.db import db
from core.errors import Forbidden
from core.extensions import login_manager
from core.identity.models import Role

bp = Blueprint("audit", __name__, url_prefix="/audit")

PER_PAGE = 50
VERIFY_TTL = dt.timedelta(minutes=5)
READERS = (Role.SUPERVISOR, Role.ADMIN)


@bp.before_request
def _readers_only():
    if not current_user.is_authenticated:
        return login_manager.unauthorized()  # the login page for people, 401 for API clients
    if not any(current_user.has_role(role) for role in READERS):
        raise Forbidden(_l("Only supervisors and platform administrators may read the audit trail."),
                        code="audit_readers_only")
    return None


def parse_filters(args: Any) -> tuple[dict[str, str], dict[str, str]]:
    """Return (filters, errors) from query arguments; dates are days in Beijing time (YYYY-MM-DD)."""
    filters: dict[str, str] = {}
    errors: dict[str, str] = {}
    for key in ("object_type", "object_id", "actor", "action", "date_from", "date_to"):
        value = (args.get(key) or "").strip()
        if not value:
            continue
        if key.startswith("date_"):
            try:
                dt.date.fromisoformat(value)
            except ValueError:
                errors[key] = str(_l("Enter the date as YYYY-MM-DD."))
                continue
        filters[key] = value
    return filters, errors


def filtered_events(filters: dict[str, str]) -> Select:
    """The newest-first query of audit events matching ``filters`` (see :func:`parse_filters`)."""
    query = select(AuditEvent).order_by(AuditEvent.seq.desc())
    if "object_type" in filters:
        query = query.where(AuditEvent.object_type == filters["object_type"])
    if "object_id" in filters:
        query = query.where(AuditEvent.object_id == filters["object_id"])
    if "action" in filters:
        query = query.where(AuditEvent.action == filters["action"])
    if "actor" in filters:
        actor = filters["actor"]
        query = query.where(AuditEvent.actor_person_id == int(actor) if actor.isdigit() and len(actor) < 10
                            else AuditEvent.actor_name.icontains(actor, autoescape=True))
    if "date_from" in filters:
        query = query.where(AuditEvent.at >= _beijing_midnight(filters["date_from"]))
    if "date_to" in filters:
        query = query.where(AuditEvent.at < _beijing_midnight(filters["date_to"]) + dt.timedelta(days=1))
    return query


def _beijing_midnight(day: str) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), tzinfo=BEIJING).astimezone(dt.UTC)


def broken_link_message(reason: str) -> str:
    """A reader's explanation of a broken-link reason (see core.audit_verify)."""
    messages = {
        "edited": _l("A row was changed after it was written: its stored hash no longer matches its contents."),
        "deleted": _l("Rows are missing: the sequence numbers have a gap."),
        "reordered": _l("Rows were moved: an event links to an event that now sits elsewhere in the trail."),
        "relinked": _l("The event before this one was removed or rewritten."),
        "wrong_genesis": _l("The first event does not start the chain."),
        "truncated": _l("Events after the last anchored head were removed."),
        "anchor_mismatch": _l("The trail was rewritten up to an anchored head."),
        "bad_anchor": _l("The anchors file has a line that cannot be read."),
    }
    return str(messages.get(reason, _l("The chain is broken.")))


def chain_verification(force: bool = False) -> ChainVerification:
    """The chain's verification, re-run when older than VERIFY_TTL or when forced.

    A full verification reads every event (about 20,000 per second), so on a large trail each web
    process reuses its last result for a few minutes; the page shows when it ran and can force a new one.
    """
    cache = current_app.extensions.setdefault("ebid.audit_verification", {})
    last: ChainVerification | None = cache.get("result")
    if force or last is None or now() - last.checked_at >= VERIFY_TTL:
        last = verify_with_anchors(anchors_path(current_app.extensions["ebid.settings"].data_dir))
        cache["result"] = last
    return last


@bp.get("/")
def index():
    """List events newest first, with filters, and the chain's verification at the top."""
    filters, errors = parse_filters(request.args)
    page = request.args.get("page", 1, type=int)
    pagination = db.paginate(filtered_events(filters), page=page, per_page=PER_PAGE, error_out=False)
    verification = chain_verification(force=request.args.get("verify") == "1")
    object_types = db.session.execute(select(AuditEvent.object_type).distinct()
                                      .order_by(AuditEvent.object_type)).scalars().all()
    return render_template("audit/index.html", pagination=pagination, filters=filters, errors=errors,
                           verification=verification, object_types=object_types, beijing=beijing,
                           broken_message=broken_link_message(verification.broken.reason)
                           if verification.broken else None)
