"""What the tender services share: who may act, which rules apply, how changes are described."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from bidding.errors import InvalidInput, NotABidder, NotTenderManager, RulesViolated
from bidding.models import DocumentDownload, Tender
from bidding.rules import LotTerms, RuleBook, RuleSet, TenderTerms, Violation
from core.actor import Actor
from core.clock import as_utc
from core.db import db
from core.errors import Conflict
from core.identity.models import Person, Role, RoleGrant
from core.notifications import members, notify  # noqa: F401  (the domain notifies through the kernel)

RULEBOOK_KEY = "ebid.bidding.rulebook"
_DEFAULT_RULEBOOK = RuleBook()


def rulebook() -> RuleBook:
    """The app's rule book (regional overrides from settings), else the statutory defaults."""
    if has_app_context():
        return current_app.extensions.get(RULEBOOK_KEY, _DEFAULT_RULEBOOK)
    return _DEFAULT_RULEBOOK


def rules_for(tender: Tender) -> RuleSet:
    """The rules of ``tender``: the version fixed at publication, else the current one, for its region."""
    return rulebook().get(tender.rules_version, tender.region)


def require_manager(actor: Actor, tender: Tender) -> None:
    """Only the tenderer's (招标人) or agency's (代理机构) staff, acting for it, manage a tender."""
    if actor.role == Role.TENDERER and actor.organisation_id == tender.tenderer_id:
        return
    if actor.role == Role.AGENCY and tender.agency_id and actor.organisation_id == tender.agency_id:
        return
    raise NotTenderManager()


def require_bidder(actor: Actor, tender: Tender) -> None:
    """Bidders act for their organisation, which may not be the tenderer or its agency."""
    if actor.role != Role.BIDDER or actor.organisation_id is None:
        raise NotABidder()
    if tender.is_managed_by(actor.organisation_id):
        raise NotABidder(code="own_tender")


def check_version(tender: Tender, expected_version: int | None) -> None:
    """Refuse when the client edited an older version than the stored one (optimistic locking)."""
    if expected_version is not None and expected_version != tender.version:
        raise Conflict(_l("The tender was changed by someone else (you sent version %(expected)s, it is now "
                          "at version %(current)s); reload it and try again."),
                       expected=expected_version, current=tender.version)


def flush_tender() -> None:
    """Write pending changes now; a concurrent commit of the same tender becomes a Conflict."""
    try:
        db.session.flush()
    except StaleDataError as exc:
        raise Conflict() from exc


def utc_times(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with every aware ``*_at`` datetime converted to UTC (as stored and audited)."""
    return {k: as_utc(v) if k.endswith("_at") and isinstance(v, datetime) else v for k, v in values.items()}


def clean_text(value: Any, field: str, *, max_length: int, required: bool = True) -> str:
    """Trimmed text, refused when empty (if required) or too long."""
    text = (value or "").strip() if isinstance(value, str) or value is None else str(value)
    if required and not text:
        raise InvalidInput(fields={field: [_l("This field cannot be empty.")]})
    if len(text) > max_length:
        raise InvalidInput(fields={field: [_l("At most %(n)s characters.") % {"n": max_length}]})
    return text


def raise_if(violations: list[Violation]) -> None:
    if violations:
        raise RulesViolated(violations)


def lot_terms(lot: Any) -> LotTerms:
    get = lot.get if isinstance(lot, Mapping) else lambda name: getattr(lot, name, None)
    return LotTerms(estimated_price=get("estimated_price"), ceiling_price=get("ceiling_price"),
                    bond_amount=get("bond_amount"))


def terms_of(tender: Tender, **overrides: Any) -> TenderTerms:
    """The rule-relevant view of ``tender``, with ``overrides`` (proposed changes) applied."""
    def value(name: str) -> Any:
        return overrides[name] if name in overrides else getattr(tender, name)

    policy = value("guarantee_policy") or {}
    amount = policy.get("amount")
    lots = overrides.get("lots", tender.lots)
    documents = overrides.get("document_count")
    if documents is None:
        documents = sum(1 for d in tender.documents if not d.is_withdrawn)
    return TenderTerms(
        regime=str(value("regime")), category=str(value("category")), is_mandatory=bool(value("is_mandatory")),
        estimated_price=value("estimated_price"), ceiling_price=value("ceiling_price"),
        documents_from_at=value("documents_from_at"), documents_until_at=value("documents_until_at"),
        question_deadline_at=value("question_deadline_at"), bid_deadline_at=value("bid_deadline_at"),
        opening_at=overrides.get("opening_at"), bid_validity_days=value("bid_validity_days"),
        guarantee_amount=Decimal(str(amount)) if amount is not None else None,
        lots=[lot_terms(lot) for lot in lots], document_count=documents)


def jsonable(value: Any) -> Any:
    """A value as it appears in an audit summary."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def diff(tender: Tender, changes: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``{field: [old, new]}`` for the fields whose value really changes."""
    out = {}
    for name, new in changes.items():
        old = getattr(tender, name)
        if jsonable(old) != jsonable(new):
            out[name] = [jsonable(old), jsonable(new)]
    return out


def downloader_persons(tender: Tender) -> list[Person]:
    """Bidder members of every organisation that downloaded the documents (20号令 §22: notify them)."""
    stmt = (select(Person).join(RoleGrant, RoleGrant.person_id == Person.id)
            .join(DocumentDownload, DocumentDownload.organisation_id == RoleGrant.organisation_id)
            .where(DocumentDownload.tender_id == tender.id, RoleGrant.role == Role.BIDDER,
                   Person.is_enabled.is_(True))
            .distinct().order_by(Person.id))
    return list(db.session.scalars(stmt))


