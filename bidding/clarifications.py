"""Amendments (澄清/修改), questions (提问) and objections (异议) to the tender documents.

Amendments are numbered, may change periods, description and documents, and are notified to every
organisation that downloaded the documents (20号令 §22). Answers to questions are published to all with
the asker anonymous. An objection suspends the procedure until the tenderer answers it (条例 §22).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from bidding.errors import DeadlinePassed, InvalidInput, TransitionRefused
from bidding.models import (
    Amendment,
    Objection,
    ObjectionStatus,
    Question,
    Tender,
    TenderDocument,
    TenderStatus,
)
from bidding.policy import (
    check_version,
    clean_text,
    diff,
    downloader_persons,
    flush_tender,
    members,
    notify,
    raise_if,
    require_bidder,
    require_manager,
    rules_for,
    terms_of,
    utc_times,
)
from bidding.rules import (
    FUTURE_FIELDS,
    Violation,
    check_amendment,
    check_future,
    check_objection,
    check_periods,
    check_question,
    documents_issued_at,
    objection_answer_due,
    when,
)
from core import audit
from core.actor import Actor
from core.clock import now
from core.db import db
from core.errors import Conflict
from core.identity.models import Role

AMENDABLE = frozenset({"description", "documents_until_at", "question_deadline_at", "bid_deadline_at"})
MANAGER_ROLES = (Role.TENDERER, Role.AGENCY)


def _require_open(tender: Tender, at: datetime, what: Any) -> None:
    if tender.status != TenderStatus.PUBLISHED:
        raise TransitionRefused(_l("%(what)s only while the tender is open for bids; it is %(status)s."),
                                code="not_open", what=what, status=tender.status.value)
    if tender.bid_deadline_at is not None and at >= tender.bid_deadline_at:
        raise DeadlinePassed(_l("The bid deadline passed at %(date)s."), date=when(tender.bid_deadline_at))


def _documents(tender: Tender, ids: Iterable[int], field: str, *, staged: bool) -> list[TenderDocument]:
    docs = []
    for doc_id in dict.fromkeys(ids):
        doc = db.session.get(TenderDocument, doc_id)
        ok = doc is not None and doc.tender_id == tender.id and not doc.is_withdrawn
        if ok and staged and doc.published_at is not None:
            ok = False
        if ok and not staged and doc.published_at is None:
            ok = False
        if not ok:
            message = (_l("Document %(id)s is not an uploaded, unpublished file of this tender.") if staged
                       else _l("Document %(id)s is not a published file of this tender."))
            raise InvalidInput(fields={field: [message % {"id": doc_id}]})
        docs.append(doc)
    return docs


def amend_tender(actor: Actor, tender: Tender, *, summary: str, affects_bids: bool,
                 changes: Mapping[str, Any] | None = None, document_ids: Iterable[int] = (),
                 withdraw_document_ids: Iterable[int] = (), expected_version: int | None = None) -> Amendment:
    """Publish a numbered amendment; postpone the deadline when the law requires it; notify downloaders."""
    require_manager(actor, tender)
    check_version(tender, expected_version)
    at = now()
    _require_open(tender, at, _l("Amendments can be published"))
    summary = clean_text(summary, "summary", max_length=5000)
    changes = utc_times(changes or {})
    unknown = set(changes) - AMENDABLE
    if unknown:
        raise InvalidInput(fields={name: [_l("An amendment cannot change this field.")] for name in sorted(unknown)})
    if "description" in changes:
        changes["description"] = clean_text(changes["description"], "description", max_length=20000,
                                            required=False)
    added = _documents(tender, document_ids, "document_ids", staged=True)
    withdrawn = _documents(tender, withdraw_document_ids, "withdraw_document_ids", staged=False)
    changed = diff(tender, changes)
    rules = rules_for(tender)
    live = sum(1 for d in tender.documents if d.published_at is not None and not d.is_withdrawn)
    terms = terms_of(tender, **changes, document_count=live + len(added) - len(withdrawn))
    violations = check_periods(rules, terms, documents_issued_at(terms, tender.published_at or at))
    violations += check_future(terms, at, [name for name in FUTURE_FIELDS if name in changed])
    new_deadline = changes["bid_deadline_at"] if "bid_deadline_at" in changed else None
    if new_deadline is not None and new_deadline < tender.bid_deadline_at:
        violations.append(Violation("deadline_brought_forward", "bid_deadline_at", _l(
            "An amendment may postpone the bid deadline but not bring it forward (keep it at %(date)s or later)."),
            {"date": when(tender.bid_deadline_at)}))
    violations += check_amendment(rules, at=at, current_deadline=tender.bid_deadline_at,
                                  new_deadline=new_deadline, affects_bids=affects_bids)
    if terms.document_count < 1:
        violations.append(Violation("documents_required", "withdraw_document_ids",
                                    _l("The tender must keep at least one published document.")))
    raise_if(violations)

    previous_deadline = tender.bid_deadline_at
    for name in changes:
        setattr(tender, name, changes[name])
    tender.updated_at = at  # always bump the version: two amendments can never interleave
    flush_tender()
    number = (db.session.scalar(select(func.max(Amendment.number)).where(Amendment.tender_id == tender.id)) or 0) + 1
    amendment = Amendment(number=number, summary=summary, affects_bids=affects_bids,
                          changes=changed, previous_deadline_at=previous_deadline if new_deadline else None,
                          new_deadline_at=new_deadline, created_by_id=actor.person_id, published_at=at)
    tender.amendments.append(amendment)
    db.session.flush()
    for doc in added:
        doc.published_at = at
        amendment.documents.append(doc)
    for doc in withdrawn:
        doc.is_withdrawn = True
    deadline_note = (_l("The bid deadline is now %(date)s.") % {"date": when(new_deadline)}) if new_deadline else ""
    notified = notify(downloader_persons(tender), kind="tender.amendment", object_type="tender", object_id=tender.id,
                      subject=_l("Amendment No. %(number)s to tender %(code)s"),
                      body=_l("%(summary)s %(deadline)s"),
                      number=number, code=tender.code, summary=summary, deadline=deadline_note)
    db.session.flush()
    audit.record(actor, "tender.amend", "tender", tender.id, {
        "version": tender.version, "amendment_id": amendment.id, "number": number, "summary": summary,
        "affects_bids": affects_bids, "changes": changed,
        "documents_added": [{"id": d.id, "sha256": d.sha256} for d in added],
        "documents_withdrawn": [d.id for d in withdrawn], "notified": notified})
    return amendment


def ask_question(actor: Actor, tender: Tender, text: str) -> Question:
    """A bidder asks a question before the question deadline."""
    require_bidder(actor, tender)
    at = now()
    _require_open(tender, at, _l("Questions can be asked"))
    raise_if(check_question(at=at, question_deadline=tender.question_deadline_at))
    text = clean_text(text, "text", max_length=5000)
    question = Question(tender_id=tender.id, asker_id=actor.person_id, asker_organisation_id=actor.organisation_id,
                        text=text, asked_at=at)
    db.session.add(question)
    db.session.flush()
    notify(members([tender.tenderer_id, tender.agency_id], MANAGER_ROLES), kind="tender.question",
           object_type="question", object_id=question.id,
           subject=_l("New question about tender %(code)s"), body="%(text)s", code=tender.code, text=text)
    audit.record(actor, "question.ask", "question", question.id, {"tender_id": tender.id, "text": text})
    return question


def answer_question(actor: Actor, question: Question, answer: str) -> Question:
    """Publish the answer to all (asker anonymous) and notify every downloader."""
    tender = question.tender
    require_manager(actor, tender)
    if question.answered_at is not None:
        raise Conflict(_l("This question has already been answered; publish an amendment to add to the answer."),
                       code="already_answered")
    at = now()
    _require_open(tender, at, _l("Questions can be answered"))
    answer = clean_text(answer, "answer", max_length=10000)
    question.answer, question.answered_by_id, question.answered_at = answer, actor.person_id, at
    db.session.flush()
    recipients = downloader_persons(tender) + members([question.asker_organisation_id], [Role.BIDDER])
    notified = notify(recipients, kind="tender.answer", object_type="question", object_id=question.id,
                      subject=_l("A question about tender %(code)s has been answered"),
                      body=_l("Question: %(question)s\nAnswer: %(answer)s"),
                      code=tender.code, question=question.text, answer=answer)
    audit.record(actor, "question.answer", "question", question.id,
                 {"tender_id": tender.id, "answer": answer, "notified": notified})
    return question


def raise_objection(actor: Actor, tender: Tender, text: str) -> Objection:
    """A bidder objects (异议) to the tender documents; the procedure is suspended until it is answered."""
    require_bidder(actor, tender)
    at = now()
    _require_open(tender, at, _l("Objections can be raised"))
    rules = rules_for(tender)
    raise_if(check_objection(rules, at=at, bid_deadline=tender.bid_deadline_at))
    text = clean_text(text, "text", max_length=10000)
    was_suspended = tender.is_suspended
    tender.is_suspended, tender.updated_at = True, at
    flush_tender()
    objection = Objection(tender_id=tender.id, raised_by_id=actor.person_id, organisation_id=actor.organisation_id,
                          text=text, raised_at=at, answer_due_at=objection_answer_due(rules, at),
                          status=ObjectionStatus.PENDING)
    db.session.add(objection)
    db.session.flush()
    notify(members([tender.tenderer_id, tender.agency_id], MANAGER_ROLES), kind="tender.objection",
           object_type="objection", object_id=objection.id,
           subject=_l("Objection to tender %(code)s: answer by %(date)s"), body="%(text)s",
           code=tender.code, date=when(objection.answer_due_at), text=text)
    audit.record(actor, "objection.raise", "objection", objection.id,
                 {"tender_id": tender.id, "text": text, "answer_due_at": objection.answer_due_at.isoformat(),
                  "is_suspended": [was_suspended, True]})
    return objection


def answer_objection(actor: Actor, objection: Objection, answer: str) -> Objection:
    """Answer an objection; when none remain pending the suspension is lifted."""
    tender = objection.tender
    require_manager(actor, tender)
    if objection.status != ObjectionStatus.PENDING:
        raise Conflict(_l("This objection has already been answered."), code="already_answered")
    answer = clean_text(answer, "answer", max_length=10000)
    at = now()
    objection.status, objection.answer = ObjectionStatus.ANSWERED, answer
    objection.answered_by_id, objection.answered_at = actor.person_id, at
    db.session.flush()
    pending = db.session.scalar(select(func.count()).select_from(Objection).where(
        Objection.tender_id == tender.id, Objection.status == ObjectionStatus.PENDING))
    lifted = tender.is_suspended and not pending and tender.hold_reason is None  # a supervisor's hold stays
    if lifted:
        tender.is_suspended, tender.updated_at = False, at
        flush_tender()
    notify(members([objection.organisation_id], [Role.BIDDER]), kind="tender.objection_answer",
           object_type="objection", object_id=objection.id,
           subject=_l("Your objection to tender %(code)s has been answered"), body="%(answer)s",
           code=tender.code, answer=answer)
    audit.record(actor, "objection.answer", "objection", objection.id,
                 {"tender_id": tender.id, "answer": answer, "late": at > objection.answer_due_at,
                  "suspension_lifted": lifted, "pending": pending})
    return objection


__all__ = ["AMENDABLE", "amend_tender", "answer_objection", "answer_question", "ask_question",
           "raise_objection"]
