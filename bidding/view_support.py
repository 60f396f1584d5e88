"""What the tender pages share: the blueprint, template filters and labels, and who acts for whom."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from bidding.models import DecryptionMode, ObjectionStatus, ProcurementCategory, Regime, Tender, TenderStatus
from bidding.policy import require_manager
from bidding.queries import (
    amendments_of,
    managed_organisation_ids,
    objections_of,
    published_answers,
    visible_documents,
)
from core.actor import Actor
from core.clock import as_utc, beijing, now
from core.forms import form_error, refusal  # noqa: F401 - the views import them from here
from core.identity.access import current_actor
from core.identity.models import Organisation, Role

bp = Blueprint("tenders", __name__)

MANAGER_ROLES = (Role.TENDERER, Role.AGENCY)

STATUS_LABELS = {
    TenderStatus.DRAFT: _l("Draft"), TenderStatus.PUBLISHED: _l("Open for bids"),
    TenderStatus.OPENING: _l("Opening"), TenderStatus.EVALUATION: _l("Evaluation"),
    TenderStatus.PUBLICITY: _l("Candidates in publicity"), TenderStatus.AWARDED: _l("Awarded"),
    TenderStatus.FAILED: _l("Failed"), TenderStatus.CANCELLED: _l("Cancelled"),
}
REGIME_LABELS = {Regime.WORKS: _l("Construction works (工程建设)"),
                 Regime.GOVERNMENT_PROCUREMENT: _l("Government procurement (政府采购)")}
CATEGORY_LABELS = {ProcurementCategory.WORKS: _l("Works"), ProcurementCategory.GOODS: _l("Goods"),
                   ProcurementCategory.SERVICES: _l("Services")}
DECRYPTION_LABELS = {
    DecryptionMode.BIDDER: _l("Each bidder decrypts its own bid"),
    DecryptionMode.CUSTODIANS: _l("Key custodians decrypt"),
    DecryptionMode.BIDDER_THEN_CUSTODIANS: _l("Bidder, with custodians as fallback"),
    DecryptionMode.DOUBLE_ENVELOPE: _l("Double envelope (bidder and tender key)"),
}
OBJECTION_LABELS = {ObjectionStatus.PENDING: _l("Awaiting answer"), ObjectionStatus.ANSWERED: _l("Answered"),
                    ObjectionStatus.WITHDRAWN: _l("Withdrawn")}
ROLE_LABELS = {Role.TENDERER: _l("tenderer"), Role.AGENCY: _l("agency"), Role.BIDDER: _l("bidder")}
DOCUMENT_KINDS = {"biddingDocuments": _l("Tender documents (招标文件)"),
                  "tenderNotice": _l("Tender notice (招标公告)"),
                  "technicalSpecifications": _l("Technical specifications"),
                  "billOfQuantity": _l("Bill of quantities (工程量清单)"),
                  "evaluationCriteria": _l("Evaluation criteria"),
                  "clarifications": _l("Clarifications"), "other": _l("Other")}
FIELD_LABELS = {
    "title": _l("Title"), "description": _l("Description"), "regime": _l("Regime"), "category": _l("Category"),
    "region": _l("Region code"), "is_mandatory": _l("Tendering required by law"),
    "estimated_price": _l("Estimated price"), "ceiling_price": _l("Ceiling price (最高投标限价)"),
    "documents_from_at": _l("Documents available from"), "documents_until_at": _l("Documents available until"),
    "question_deadline_at": _l("Question deadline"), "bid_deadline_at": _l("Bid deadline and opening"),
    "bid_validity_days": _l("Bid validity (days)"), "decryption_mode": _l("Decryption"), "lots": _l("Lots"),
    "documents": _l("Documents"), "file": _l("File"), "tenderer_uscc": _l("Tenderer (USCC)"),
    "tenderer_id": _l("Tenderer"), "summary": _l("Summary"), "new_deadline_at": _l("New bid deadline"),
    "text": _l("Text"), "answer": _l("Answer"), "reason": _l("Reason"), "code": _l("Code"),
    "guarantee_policy.amount": _l("Bid bond"), "opening_at": _l("Opening time"),
}
LOT_FIELD_LABELS = {"title": _l("title"), "description": _l("description"), "estimated_price": _l("estimated price"),
                    "ceiling_price": _l("ceiling price"), "bond_amount": _l("bid bond"), "code": _l("code")}


def field_label(name: str) -> str:
    """A person's name for a form field, also for ``lots.N.field``."""
    parts = name.split(".")
    if len(parts) == 3 and parts[0] == "lots" and parts[1].isdigit():
        return _("Lot %(number)s, %(field)s", number=int(parts[1]) + 1,
                 field=str(LOT_FIELD_LABELS.get(parts[2], parts[2])))
    return str(FIELD_LABELS.get(name, name))


def remaining(delta: timedelta) -> str:
    """A countdown's text before the script takes over (and without script)."""
    seconds = max(int(delta.total_seconds()), 0)
    days, seconds = divmod(seconds, 86400)
    text = f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return (f"{days}{_('d ')}" if days else "") + text


def filesize(size: int) -> str:
    for unit in ("B", "KB", "MB"):
        if size < 1024 or unit == "MB":
            return f"{size} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


@bp.app_template_filter("bjt")
def _bjt(value: datetime | None) -> str:
    return beijing(value).strftime("%Y-%m-%d %H:%M") if value else ""


@bp.app_template_filter("utc_ms")
def _utc_ms(value: datetime) -> int:
    return int(as_utc(value).timestamp() * 1000)


@bp.app_template_filter("money")
def _money(value) -> str:
    return "" if value is None else f"{value:,.2f}"


bp.add_app_template_filter(remaining, "remaining")
bp.add_app_template_filter(filesize, "filesize")


@bp.app_context_processor
def _labels() -> dict[str, Any]:
    return {"status_label": lambda s: str(STATUS_LABELS.get(TenderStatus(s), s)),
            "regime_label": lambda r: str(REGIME_LABELS.get(Regime(r), r)),
            "category_label": lambda c: str(CATEGORY_LABELS.get(ProcurementCategory(c), c)),
            "decryption_label": lambda d: str(DECRYPTION_LABELS.get(DecryptionMode(d), d)),
            "objection_label": lambda s: str(OBJECTION_LABELS.get(ObjectionStatus(s), s)),
            "role_label": lambda r: str(ROLE_LABELS.get(Role(r), r)),
            "document_kind_label": lambda k: str(DOCUMENT_KINDS.get(k, k)),
            "field_label": field_label}


def int_arg(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def choices_for(*roles: Role) -> list[tuple[Role, Organisation]]:
    """The (role, organisation) pairs the logged-in person may act as, for ``roles``."""
    if not current_user.is_authenticated:
        return []
    return [(g.role, g.organisation) for g in current_user.grants
            if g.role in roles and g.organisation is not None]


def acting_as(roles: tuple[Role, ...], organisation_id: int | None) -> Actor:
    """The actor for the organisation chosen in the form (or the only one); 403 for a non-member."""
    choices = choices_for(*roles)
    if organisation_id is None:
        organisation_id = choices[0][1].id if len({org.id for _r, org in choices}) == 1 else None
    for role, org in choices:
        if org.id == organisation_id:
            return current_actor(role, organisation_id)
    held = [r for r in roles if current_user.is_authenticated and current_user.has_role(r)]
    # not a member (or no organisation chosen): access.py words the refusal
    return current_actor(held[0] if held else roles[0], organisation_id)


def managing(tender: Tender, organisation_id: int | None = None) -> Actor:
    """The actor managing ``tender``: for the chosen organisation, else the person's one on the tender."""
    if organisation_id is None:
        mine = [org.id for _r, org in choices_for(*MANAGER_ROLES) if tender.is_managed_by(org.id)]
        organisation_id = mine[0] if mine else None
    actor = acting_as(MANAGER_ROLES, organisation_id)
    require_manager(actor, tender)  # a member of another organisation may not manage this tender
    return actor


def manages(tender: Tender) -> bool:
    """True when the logged-in person works for this tender's tenderer or agency."""
    return any(tender.is_managed_by(org.id) for _r, org in choices_for(*MANAGER_ROLES))


def viewer_orgs() -> frozenset[int]:
    """Organisations whose drafts and staged files the logged-in person may see."""
    return managed_organisation_ids(current_user if current_user.is_authenticated else None)


def detail_context(tender: Tender, **extra: Any) -> dict[str, Any]:
    """What the detail page shows (also re-rendered with a refused bidder form's message)."""
    orgs = viewer_orgs()
    is_manager = bool({tender.tenderer_id, tender.agency_id} & orgs)
    bidder_choices = [] if is_manager else choices_for(Role.BIDDER)
    own_orgs = {org.id for _r, org in bidder_choices}
    chosen = int_arg(request.values.get("organisation_id") or request.args.get("org"))
    acting_org = chosen if chosen in own_orgs else (bidder_choices[0][1].id if bidder_choices else None)
    objections = objections_of(tender)
    at = now()
    is_open = tender.status == TenderStatus.PUBLISHED and (tender.bid_deadline_at is None
                                                           or tender.bid_deadline_at > at)
    context = {
        "tender": tender, "server_now": at, "is_open": is_open, "is_manager": is_manager,
        "documents": visible_documents(tender, orgs), "amendments": amendments_of(tender),
        "answers": published_answers(tender), "objections": objections,
        "own_objections": [o for o in objections if o.organisation_id in own_orgs],
        "pending_objections": sum(1 for o in objections if o.status == ObjectionStatus.PENDING),
        "bidder_choices": bidder_choices, "acting_org": acting_org,
        "can_download": is_manager or bool(bidder_choices),
        "questions_open": is_open and (tender.question_deadline_at is None or tender.question_deadline_at > at),
        "manager_choices": choices_for(*MANAGER_ROLES),
        "error": None, "errors": {}, "error_for": None, "values": {},
    }
    context.update(extra)
    return context



def form_int(name: str) -> int | None:
    return int_arg(request.form.get(name))
