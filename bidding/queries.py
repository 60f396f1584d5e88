"""Read models of tenders: search with filters and stable pagination, visibility of drafts, Q&A."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy import Select, func, or_, select

from bidding.models import Amendment, Objection, Question, Tender, TenderDocument, TenderStatus
from core.db import db
from core.errors import NotFound
from core.identity.models import Person, Role

T = TypeVar("T")
MAX_PER_PAGE = 100


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def managed_organisation_ids(person: Person | None) -> frozenset[int]:
    """Organisations whose tenders ``person`` may see as staff (tenderer or agency grants)."""
    if person is None or not getattr(person, "is_authenticated", False):
        return frozenset()
    return frozenset(g.organisation_id for g in person.grants
                     if g.role in (Role.TENDERER, Role.AGENCY) and g.organisation_id is not None)


def _visible(stmt: Select, viewer_org_ids: Collection[int]) -> Select:
    """Published (and later) tenders are public; drafts only to their tenderer's and agency's staff."""
    ids = list(viewer_org_ids)
    if not ids:
        return stmt.where(Tender.status != TenderStatus.DRAFT)
    return stmt.where(or_(Tender.status != TenderStatus.DRAFT, Tender.tenderer_id.in_(ids), Tender.agency_id.in_(ids)))


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_tenders(*, text: str | None = None, status: str | None = None, regime: str | None = None,
                   category: str | None = None, region: str | None = None, tenderer_id: int | None = None,
                   deadline_after: datetime | None = None, deadline_before: datetime | None = None,
                   viewer_org_ids: Collection[int] = (), page: int = 1, per_page: int = 20) -> Page[Tender]:
    """Tenders matching ``text`` (title, code, description) and filters, newest published first."""
    page, per_page = max(1, page), min(max(1, per_page), MAX_PER_PAGE)
    stmt = _visible(select(Tender), viewer_org_ids)
    if text and text.strip():
        pattern = _like(text.strip())
        stmt = stmt.where(or_(Tender.title.ilike(pattern, escape="\\"), Tender.code.ilike(pattern, escape="\\"),
                              Tender.description.ilike(pattern, escape="\\")))
    for column, value in ((Tender.status, status), (Tender.regime, regime), (Tender.category, category),
                          (Tender.tenderer_id, tenderer_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    if region:
        stmt = stmt.where(Tender.region.startswith(region, autoescape=True))
    if deadline_after is not None:
        stmt = stmt.where(Tender.bid_deadline_at >= deadline_after)
    if deadline_before is not None:
        stmt = stmt.where(Tender.bid_deadline_at < deadline_before)
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    ordered = stmt.order_by(Tender.published_at.desc().nulls_last(), Tender.id.desc())
    items = list(db.session.scalars(ordered.limit(per_page).offset((page - 1) * per_page)))
    return Page(items=items, total=total or 0, page=page, per_page=per_page)


def get_tender(tender_id: int, viewer_org_ids: Collection[int] = ()) -> Tender:
    """The tender, or NotFound (also for a draft the viewer may not see: its existence is not disclosed)."""
    tender = db.session.get(Tender, tender_id)
    if tender is None or (tender.status == TenderStatus.DRAFT
                          and not ({tender.tenderer_id, tender.agency_id} & set(viewer_org_ids))):
        raise NotFound()
    return tender


def _get(model, object_id: int):
    obj = db.session.get(model, object_id)
    if obj is None:
        raise NotFound()
    return obj


def get_question(question_id: int) -> Question:
    return _get(Question, question_id)


def get_objection(objection_id: int) -> Objection:
    return _get(Objection, objection_id)


def get_document(document_id: int) -> TenderDocument:
    return _get(TenderDocument, document_id)


def visible_documents(tender: Tender, viewer_org_ids: Collection[int] = ()) -> list[TenderDocument]:
    """Issued documents for everyone; staff also see staged and withdrawn ones."""
    if {tender.tenderer_id, tender.agency_id} & set(viewer_org_ids):
        return list(tender.documents)
    return [d for d in tender.documents if d.published_at is not None and not d.is_withdrawn]


def published_answers(tender: Tender) -> list[Question]:
    """Answered questions, oldest first (the asker is never part of the published answer)."""
    return list(db.session.scalars(select(Question).where(Question.tender_id == tender.id,
                                                          Question.answered_at.is_not(None))
                                   .order_by(Question.answered_at, Question.id)))


def pending_questions(tender: Tender) -> list[Question]:
    return list(db.session.scalars(select(Question).where(Question.tender_id == tender.id,
                                                          Question.answered_at.is_(None)).order_by(Question.id)))


def amendments_of(tender: Tender) -> list[Amendment]:
    return list(db.session.scalars(select(Amendment).where(Amendment.tender_id == tender.id)
                                   .order_by(Amendment.number)))


def objections_of(tender: Tender, organisation_id: int | None = None) -> list[Objection]:
    """All objections of a tender (staff), or only those raised by ``organisation_id``."""
    stmt = select(Objection).where(Objection.tender_id == tender.id)
    if organisation_id is not None:
        stmt = stmt.where(Objection.organisation_id == organisation_id)
    return list(db.session.scalars(stmt.order_by(Objection.id)))
