"""Tender verbs: create and edit a draft, attach documents, publish, cancel, download.

Every function takes the actor explicitly, validates before changing anything, records the change in the
audit trail and flushes; the caller (view or task) commits. Amendments, questions and objections live in
:mod:`bidding.clarifications`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

from blinker import Namespace
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from bidding import lifecycle, opening_key
from bidding.errors import DeadlinePassed, InvalidInput, NotEditable, RulesViolated
from bidding.models import (
    DecryptionMode,
    DocumentDownload,
    Lot,
    ProcurementCategory,
    Regime,
    Tender,
    TenderCustodian,
    TenderDocument,
    TenderStatus,
)
from bidding.policy import (
    check_version,
    clean_text,
    diff,
    flush_tender,
    jsonable,
    raise_if,
    require_bidder,
    require_manager,
    rulebook,
    rules_for,
    terms_of,
    utc_times,
)
from bidding.rules import (
    Violation,
    check_bid_validity,
    check_guarantees,
    check_periods,
    check_prices,
    check_publication,
    when,
)
from core import audit
from core.actor import Actor
from core.clock import now
from core.db import db
from core.errors import Conflict, Forbidden, NotFound
from core.identity.models import Organisation, Person, Role
from core.storage import FileStore, default_store

DRAFT_FIELDS = frozenset({
    "title", "description", "regime", "category", "is_mandatory", "region", "agency_id", "estimated_price",
    "ceiling_price", "documents_from_at", "documents_until_at", "question_deadline_at", "bid_deadline_at",
    "bid_validity_days", "evaluation_method", "guarantee_policy", "decryption_mode", "custodian_threshold",
})
CUSTODIAN_MODES = frozenset({DecryptionMode.CUSTODIANS, DecryptionMode.BIDDER_THEN_CUSTODIANS})
LOT_FIELDS = ("code", "title", "description", "estimated_price", "ceiling_price", "bond_amount", "max_bid_bytes")
# Period rules that depend on the publication time are only decided at publication.
TIME_DEPENDENT = frozenset({"documents_period_too_short", "bid_period_too_short"})
CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{2,39}$")
MAX_DOCUMENT_BYTES = 200 * 1024 * 1024

# Signals for the layers above (guarantees release their letters, 条例 §§35, 57). Sent with the tender
# as sender after the change is flushed, inside the same transaction: a receiver's changes commit or
# roll back with it. ``tender_cancelled.send(tender, actor=actor)``; ``tender_failed.send(tender,
# actor=actor, at=when)`` must be sent by whatever marks a tender failed (流标), e.g. the opening.
_signals = Namespace()
tender_cancelled = _signals.signal("tender-cancelled")
tender_failed = _signals.signal("tender-failed")
# Some lots failed at the deadline (fewer than three bids) while the tender opens its other lots:
# ``lots_failed.send(tender, actor=actor, at=when, lots=[codes])`` (bidding.retender tells the tenderer).
lots_failed = _signals.signal("lots-failed")

# The evaluation method's parameters are checked and normalised at publication by the package that
# evaluates (it sits above bidding): ``fn(evaluation_method) -> normalised dict``, raising ValidationFailed.
MethodCheck = Callable[[dict[str, Any]], dict[str, Any]]
_method_checks: list[MethodCheck] = []


def register_method_check(fn: MethodCheck) -> MethodCheck:
    """Install a check of ``evaluation_method`` run when a tender is published (the evaluation package's)."""
    if fn not in _method_checks:
        _method_checks.append(fn)
    return fn


def check_method(evaluation_method: dict[str, Any] | None) -> dict[str, Any]:
    """The method as it is fixed at publication, after every installed check (refusals name the field)."""
    method = dict(evaluation_method or {})
    for check in _method_checks:
        method = check(method)
    return method


def _organisation(org_id: int | None, field: str) -> Organisation | None:
    if org_id is None:
        return None
    org = db.session.get(Organisation, org_id)
    if org is None:
        raise InvalidInput(fields={field: [_l("No organisation has the id %(id)s.") % {"id": org_id}]})
    return org


def _clean_lots(lots: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    clean = []
    for i, lot in enumerate(lots):
        item = {k: lot.get(k) for k in LOT_FIELDS}
        item["title"] = clean_text(item["title"], f"lots.{i}.title", max_length=300)
        item["code"] = clean_text(item["code"], f"lots.{i}.code", max_length=50, required=False) or f"{i + 1:02d}"
        item["description"] = item["description"] or ""
        clean.append(item)
    return clean


def _custodians(ids: list[int] | None) -> list[Person] | None:
    """The key custodians (密钥保管人) named for the opening key: existing persons holding that role."""
    if ids is None:
        return None
    persons = []
    for person_id in dict.fromkeys(ids):
        person = db.session.get(Person, person_id)
        if person is None or not person.has_role(Role.CUSTODIAN):
            raise InvalidInput(fields={"custodian_ids": [
                _l("Person %(id)s is not a registered key custodian.") % {"id": person_id}]})
        persons.append(person)
    return persons


def _check_custodians(mode: Any, threshold: int | None, count: int, *, publishing: bool) -> None:
    if threshold is not None and count and not 1 <= threshold <= count:
        raise InvalidInput(fields={"custodian_threshold": [
            _l("Choose a threshold between 1 and the number of custodians (%(n)s).") % {"n": count}]})
    if publishing and mode in CUSTODIAN_MODES and (not threshold or count < threshold):
        raise RulesViolated([Violation("custodians_required", "custodian_ids", _l(
            "This decryption mode needs key custodians: name at least %(n)s and a threshold."),
            {"n": max(threshold or 1, 1)})])


def _set_custodians(tender: Tender, persons: list[Person]) -> None:
    tender.custodians.clear()
    db.session.flush()
    for position, person in enumerate(persons, start=1):
        tender.custodians.append(TenderCustodian(person_id=person.id, position=position))


def _draft_checks(tender: Tender, changes: Mapping[str, Any]) -> None:
    """Refuse draft values that no publication could accept (prices, bonds, validity, order of dates)."""
    rules = rulebook().get(None, changes.get("region", tender.region))
    terms = terms_of(tender, **changes)
    periods = [v for v in check_periods(rules, terms, terms.documents_from_at or now())
               if v.code not in TIME_DEPENDENT]
    problems = check_prices(terms) + check_guarantees(rules, terms) + periods
    if terms.bid_validity_days is not None:
        problems += check_bid_validity(rules, terms)
    raise_if(problems)


def _normalise(changes: Mapping[str, Any]) -> dict[str, Any]:
    clean = utc_times(changes)
    if "title" in clean:
        clean["title"] = clean_text(clean["title"], "title", max_length=300)
    if "description" in clean:
        clean["description"] = clean_text(clean["description"], "description", max_length=20000, required=False)
    for name, enum_type in (("regime", Regime), ("category", ProcurementCategory),
                            ("decryption_mode", DecryptionMode)):
        if name in clean and clean[name] is not None:
            clean[name] = enum_type(clean[name])
    if "lots" in clean:
        clean["lots"] = _clean_lots(clean["lots"] or [])
    if "agency_id" in clean:
        _organisation(clean["agency_id"], "agency_id")
    return clean


def _set_lots(tender: Tender, lots: list[dict[str, Any]]) -> None:
    tender.lots.clear()
    db.session.flush()  # free the (tender_id, number) pairs before the new lots take them
    for number, lot in enumerate(lots, start=1):
        tender.lots.append(Lot(number=number, **lot))


def create_tender(actor: Actor, data: Mapping[str, Any]) -> Tender:
    """Create a draft tender for the actor's organisation (tenderer), or for a client (agency)."""
    if actor.role == Role.TENDERER:
        tenderer_id = data.get("tenderer_id") or actor.organisation_id
        if tenderer_id != actor.organisation_id:
            raise Forbidden(_l("Tenderer staff can only create tenders for their own organisation."),
                            code="not_tender_manager")
        agency_id = data.get("agency_id")
    elif actor.role == Role.AGENCY:
        tenderer_id, agency_id = data.get("tenderer_id"), actor.organisation_id
        if tenderer_id is None:
            raise InvalidInput(fields={"tenderer_id": [_l("An agency must say which tenderer (招标人) it acts for.")]})
    else:
        raise Forbidden(_l("Only tenderer or agency staff can create tenders."), code="not_tender_manager")
    _organisation(tenderer_id, "tenderer_id")
    for name in ("title", "regime", "category", "estimated_price"):
        if data.get(name) in (None, ""):
            raise InvalidInput(fields={name: [_l("This field is required.")]})
    code = clean_text(data.get("code"), "code", max_length=40, required=False)
    if code and not CODE_PATTERN.match(code):
        raise InvalidInput(fields={"code": [_l("Use 3 to 40 letters, digits, '.', '_', '/' or '-'.")]})
    if code and db.session.scalar(select(func.count()).select_from(Tender).where(Tender.code == code)):
        raise Conflict(_l("Another tender already uses the code %(code)s; choose another."),
                       code="duplicate_code", code_value=code)
    changes = _normalise({k: v for k, v in data.items() if k in DRAFT_FIELDS | {"lots"}})
    lots = changes.pop("lots", [])
    custodians = _custodians(data.get("custodian_ids")) or []
    values = {"region": "CN", "is_mandatory": True, "bid_validity_days": 90, "guarantee_policy": {},
              "evaluation_method": {}, "description": "", **changes, "agency_id": agency_id}
    # a transient object: if a check fails nothing has entered the session
    tender = Tender(code=code or f"ZB{now():%Y%m%d}{secrets.token_hex(3).upper()}", tenderer_id=tenderer_id,
                    created_by_id=actor.person_id, status=TenderStatus.DRAFT, **values)
    _draft_checks(tender, {"lots": lots})
    _check_custodians(tender.decryption_mode, tender.custodian_threshold, len(custodians), publishing=False)
    db.session.add(tender)
    _set_lots(tender, lots)
    _set_custodians(tender, custodians)
    db.session.flush()
    audit.record(actor, "tender.create", "tender", tender.id,
                 {"code": tender.code, "title": tender.title, "lots": len(lots),
                  "custodian_ids": [p.id for p in custodians],
                  "values": {k: jsonable(v) for k, v in values.items()}})
    return tender


def update_tender(actor: Actor, tender: Tender, changes: Mapping[str, Any], *,
                  expected_version: int | None = None) -> Tender:
    """Edit a draft; a published tender changes only through an amendment."""
    require_manager(actor, tender)
    check_version(tender, expected_version)
    if tender.status != TenderStatus.DRAFT:
        raise NotEditable()
    unknown = set(changes) - DRAFT_FIELDS - {"lots", "custodian_ids"}
    if unknown:
        raise InvalidInput(fields={name: [_l("This field cannot be changed.")] for name in sorted(unknown)})
    changes = _normalise(changes)
    custodians = _custodians(changes.pop("custodian_ids", None))
    _draft_checks(tender, changes)
    count = len(custodians) if custodians is not None else len(tender.custodians)
    _check_custodians(changes.get("decryption_mode", tender.decryption_mode),
                      changes.get("custodian_threshold", tender.custodian_threshold), count, publishing=False)
    lots = changes.pop("lots", None)
    changed = diff(tender, changes)
    if custodians is not None and [c.person_id for c in tender.custodians] != [p.id for p in custodians]:
        changed["custodian_ids"] = [[c.person_id for c in tender.custodians], [p.id for p in custodians]]
    if lots is not None:
        old_lots = [{k: jsonable(getattr(lot, k)) for k in LOT_FIELDS} for lot in tender.lots]
        new_lots = [{k: jsonable(lot[k]) for k in LOT_FIELDS} for lot in lots]
        if old_lots != new_lots:
            changed["lots"] = [old_lots, new_lots]
    if not changed:
        return tender
    for name in changes:
        setattr(tender, name, changes[name])
    tender.updated_at = now()
    flush_tender()
    if "lots" in changed:
        _set_lots(tender, lots)
    if "custodian_ids" in changed:
        _set_custodians(tender, custodians)
    db.session.flush()
    audit.record(actor, "tender.update", "tender", tender.id, {"version": tender.version, "changes": changed})
    return tender


def add_document(actor: Actor, tender: Tender, *, stream: BinaryIO, filename: str,
                 content_type: str | None = None, kind: str = "tenderNotice",
                 store: FileStore | None = None) -> TenderDocument:
    """Store a file for the tender; staged until publication (draft) or until an amendment issues it."""
    require_manager(actor, tender)
    if tender.status != TenderStatus.DRAFT and tender.status != TenderStatus.PUBLISHED:
        raise lifecycle.TransitionRefused(_l("Documents can only be added while the tender is a draft or open "
                                             "for bids."), code="documents_closed")
    name = clean_text((filename or "").replace("\\", "/").rsplit("/", 1)[-1], "file", max_length=255)
    kind = clean_text(kind, "kind", max_length=32)
    try:
        sha256, size = (store or default_store()).put_stream(stream, max_size=MAX_DOCUMENT_BYTES)
    except ValueError as exc:
        raise InvalidInput(fields={"file": [_l("The file is larger than 200 MB.")]}) from exc
    if size == 0:
        raise InvalidInput(fields={"file": [_l("The file is empty.")]})
    doc = TenderDocument(kind=kind, filename=name, sha256=sha256, size=size,
                         content_type=(content_type or "application/octet-stream")[:100],
                         uploaded_by_id=actor.person_id, uploaded_at=now())
    tender.documents.append(doc)
    db.session.flush()
    audit.record(actor, "tender.document.add", "tender", tender.id,
                 {"document_id": doc.id, "filename": name, "sha256": sha256, "size": size, "kind": kind,
                  "staged": True})
    return doc


def publish_tender(actor: Actor, tender: Tender, *, expected_version: int | None = None) -> Tender:
    """Publish a draft: run every rule against now(), fix the rules version, issue the staged documents."""
    require_manager(actor, tender)
    check_version(tender, expected_version)
    if tender.status != TenderStatus.DRAFT:
        lifecycle.transition(tender, TenderStatus.PUBLISHED)  # raises with the reason
    at = now()
    book = rulebook()
    rules = book.get(book.current_version, tender.region)
    raise_if(check_publication(rules, terms_of(tender), at))
    method = check_method(tender.evaluation_method)  # refused before anything changes
    _check_custodians(tender.decryption_mode, tender.custodian_threshold, len(tender.custodians), publishing=True)
    ceremony = opening_key.prepare(tender, at)  # the opening key (开标密钥), split among the custodians
    lifecycle.transition(tender, TenderStatus.PUBLISHED)
    tender.evaluation_method = method  # the parameters, with every default written out, fixed from now on
    tender.rules_version = rules.version
    tender.published_at = at
    if tender.documents_from_at is None or tender.documents_from_at < at:
        tender.documents_from_at = at
    flush_tender()
    issued = [d for d in tender.documents if d.published_at is None and not d.is_withdrawn]
    for doc in issued:
        doc.published_at = at
    db.session.flush()
    opening_key.record(actor, tender, ceremony, at)
    audit.record(actor, "tender.publish", "tender", tender.id,
                 {"version": tender.version, "rules_version": rules.version, "published_at": at.isoformat(),
                  "bid_deadline_at": jsonable(tender.bid_deadline_at),
                  "documents": [{"id": d.id, "sha256": d.sha256} for d in issued]})
    return tender


def cancel_tender(actor: Actor, tender: Tender, reason: str, *, expected_version: int | None = None) -> Tender:
    """Cancel (终止) a tender, with the reason everyone will read."""
    require_manager(actor, tender)
    check_version(tender, expected_version)
    reason = clean_text(reason, "reason", max_length=2000)
    old = lifecycle.transition(tender, TenderStatus.CANCELLED)
    tender.cancelled_at = now()
    tender.cancel_reason = reason
    flush_tender()
    audit.record(actor, "tender.cancel", "tender", tender.id,
                 {"version": tender.version, "status": [old.value, TenderStatus.CANCELLED.value], "reason": reason})
    tender_cancelled.send(tender, actor=actor)
    return tender


def record_download(actor: Actor, document: TenderDocument) -> TenderDocument:
    """Let a bidder (or the tender's staff) fetch an issued document; record the organisation's first download."""
    tender = document.tender
    if tender.is_managed_by(actor.organisation_id) and actor.role in (Role.TENDERER, Role.AGENCY):
        return document
    if document.published_at is None or document.is_withdrawn or tender.status == TenderStatus.DRAFT:
        raise NotFound()
    require_bidder(actor, tender)
    at = now()
    first = db.session.scalar(select(DocumentDownload).where(DocumentDownload.tender_id == tender.id,
                                                             DocumentDownload.organisation_id == actor.organisation_id))
    if first is None:
        if tender.status != TenderStatus.PUBLISHED or (tender.documents_until_at and at > tender.documents_until_at):
            raise DeadlinePassed(_l("The tender documents could only be obtained until %(date)s."),
                                 code="documents_closed", date=_shown(tender.documents_until_at))
        if tender.documents_from_at and at < tender.documents_from_at:
            raise DeadlinePassed(_l("The tender documents are available from %(date)s."),
                                 code="documents_not_yet_available", date=_shown(tender.documents_from_at))
        db.session.add(DocumentDownload(tender_id=tender.id, organisation_id=actor.organisation_id,
                                        person_id=actor.person_id, first_at=at))
    audit.record(actor, "tender.document.download", "tender", tender.id,
                 {"document_id": document.id, "sha256": document.sha256, "first": first is None})
    return document


def _shown(value) -> str:
    return "-" if value is None else when(value)


def record_refused(actor: Actor, action: str, tender_id: int, summary: Mapping[str, Any]) -> None:
    """Record an attempt that was refused (e.g. lost a race) so the trail says exactly what happened."""
    audit.record(actor, action, "tender", tender_id, dict(summary))


__all__ = ["RulesViolated", "add_document", "cancel_tender", "create_tender", "record_download",
           "lots_failed", "publish_tender", "record_refused", "rules_for", "tender_cancelled", "tender_failed",
           "update_tender"]
