"""Helpers for the tender tests: actors, bidders, API clients authenticated by bearer token, trail snapshots."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from bidding.models import Amendment, DocumentDownload, Objection, Question, Tender, TenderDocument
from core.audit import AuditEvent
from core.clock import clock
from core.db import db
from core.identity.access import actor_for
from core.identity.models import OrganisationKind, Person
from core.identity.tokens import issue_api_token
from core.notifications import Notification


def staff(tender: Tender, person: Person | None = None):
    """The actor of the tender's creating staff member (tenderer role)."""
    return actor_for(person or tender.created_by, "tenderer", tender.tenderer_id)


@pytest.fixture
def create_bidder(create_org, create_person):
    """A bidder organisation with one bidder member; returns (person, actor)."""
    def create(org=None, **person_overrides):
        org = org or create_org(kind=OrganisationKind.COMPANY)
        person = create_person(roles=("bidder",), organisation=org, **person_overrides)
        return person, actor_for(person, "bidder", org.id)
    return create


@pytest.fixture
def api_as(app):
    """A test client acting as ``person`` through an API token (``Authorization: Bearer ...``)."""
    def make(person: Person):
        _, plaintext = issue_api_token(actor_for(person), person, "tests")
        db.session.commit()
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {plaintext}"
        return client
    return make


def snapshot() -> dict:
    """Row counts and the last audit event: what a refused action must leave untouched."""
    db.session.expire_all()
    counts = {model.__name__: db.session.scalar(select(func.count()).select_from(model))
              for model in (Tender, TenderDocument, Amendment, Question, Objection, DocumentDownload, Notification,
                            AuditEvent)}
    tenders = [(t.id, t.status, t.version, t.bid_deadline_at, t.is_suspended, t.title, t.description)
               for t in db.session.scalars(select(Tender).order_by(Tender.id))]
    last = db.session.scalar(select(AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1))
    return {"counts": counts, "tenders": tenders, "last_audit": last}


def refused(exc_type, func, *args, **kwargs):
    """Call ``func`` expecting ``exc_type``; assert the database and the audit trail did not change."""
    db.session.commit()
    before = snapshot()
    with pytest.raises(exc_type) as info:
        func(*args, **kwargs)
    db.session.rollback()
    assert snapshot() == before
    return info.value


def actions(object_id=None) -> list[str]:
    stmt = select(AuditEvent.action).order_by(AuditEvent.seq)
    if object_id is not None:
        stmt = stmt.where(AuditEvent.object_id == str(object_id))
    return list(db.session.scalars(stmt))


def last_event(action: str) -> AuditEvent:
    return db.session.scalar(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq.desc()))


T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # a Monday, 09:00 Beijing time


@pytest.fixture
def frozen(app):
    """Freeze the platform clock at T0; tests move it with ``clock.travel``."""
    clock.freeze(T0)
    yield clock
    clock.reset()
