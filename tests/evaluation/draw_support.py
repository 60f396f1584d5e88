"""Fixtures of the expert pool and drawing tests, for reuse: experts with logins, a request, a committee.

* ``make_expert(...)``: an expert in the pool, linked to a person with the expert role (can log in);
* ``draw_tender()``: a published tender and the actor of its staff;
* ``make_request(tender, ...)``: a draw request (5 members of one specialty by default);
* ``open_bids(tender, orgs)``: the tender's bids opened for ``orgs`` (so the bidders are known);
* ``start_room(tender)``: the tender's evaluation started (its Evaluation row);
* ``committee()``: all of the above, drawn and accepted: a complete committee.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from bidding.models import Lot, Tender
from bidding.opening_models import BidOpening
from bidding.sealed_models import Bid
from core.clock import now
from core.db import db
from core.identity.access import actor_for
from core.identity.models import Organisation, OrganisationKind, Person, Role
from evaluation import drawing, recusal
from evaluation.pool_models import CommitteeMember, DrawRequest, Expert, MemberStatus
from evaluation.room_models import Evaluation
from tests.factories import make_uscc

_codes = itertools.count(1)
SPECIALTY = "A010101"


def expert_actor(expert: Expert):
    return actor_for(expert.person, "expert")


def staff_actor(tender: Tender):
    return actor_for(tender.created_by, "tenderer", tender.tenderer_id)


@pytest.fixture(name="make_expert")
def make_expert_fixture(app, create_person):
    """An expert with a login (role expert); keyword overrides for any Expert field."""
    def make(*, person: Person | None = None, login: bool = True, **overrides) -> Expert:
        n = next(_codes)
        values: dict[str, Any] = {"code": f"E{n:05d}", "name": f"专家{n}", "specialties": [SPECIALTY],
                                  "region": "110101", "employer_uscc": make_uscc(900000 + n),
                                  "employer_name": f"Employer {n}", "avoidance_usccs": []}
        values.update(overrides)
        if login and person is None:
            person = create_person(roles=("expert",), name=values["name"])
        expert = Expert(person=person, **values)
        db.session.add(expert)
        db.session.flush()
        return expert
    return make


@pytest.fixture(name="pool")
def pool_fixture(make_expert):
    """``pool(n, **overrides)``: n experts alike but for their codes."""
    def make(n: int, **overrides) -> list[Expert]:
        return [make_expert(**overrides) for _ in range(n)]
    return make


@pytest.fixture(name="draw_tender")
def draw_tender_fixture(create_tender):
    def make(**overrides) -> Tender:
        tender = create_tender(publish=True, **overrides)
        db.session.commit()
        return tender
    return make


@pytest.fixture(name="make_request")
def make_request_fixture(app):
    def make(tender: Tender, **overrides) -> DrawRequest:
        values: dict[str, Any] = {"specialties": [(SPECIALTY, 5)], "committee_size": 5, "alternates": 2}
        values.update(overrides)
        request = drawing.request_draw(staff_actor(tender), tender.id, **values)
        db.session.commit()
        return request
    return make


@pytest.fixture(name="open_bids")
def open_bids_fixture(app, certify):
    """Record opened bids of ``orgs`` in ``tender`` (what the opening leaves behind: bidders are known)."""
    def make(tender: Tender, orgs: list[Organisation]) -> list[BidOpening]:
        lot = db.session.scalars(select(Lot).where(Lot.tender_id == tender.id)).first()
        rows = []
        for i, org in enumerate(orgs):
            _key, cert = certify(organisation=org)
            bid = Bid(public_id=f"bid-{tender.id}-{org.id}", tender_id=tender.id, lot_id=lot.id,
                      organisation_id=org.id, submitted_by_id=tender.created_by_id, signer_certificate_id=cert.id,
                      version=1, envelope_sha256=hashlib.sha256(f"{org.id}".encode()).hexdigest(),
                      envelope_size=100, received_at=now(), log_index=i, head_size=i + 1, receipt="{}")
            db.session.add(bid)
            db.session.flush()
            row = BidOpening(tender_id=tender.id, bid_id=bid.id, lot_id=lot.id, organisation_id=org.id)
            db.session.add(row)
            rows.append(row)
        db.session.commit()
        return rows
    return make


@pytest.fixture(name="start_room")
def start_room_fixture(app):
    """The tender's evaluation started (the row the scoring room creates), signing in."""
    def make(tender: Tender) -> Evaluation:
        evaluation = Evaluation(tender_id=tender.id, criteria=[], started_by_id=tender.created_by_id)
        db.session.add(evaluation)
        db.session.commit()
        return evaluation
    return make


def members_of(tender: Tender, *statuses: MemberStatus) -> list[CommitteeMember]:
    stmt = select(CommitteeMember).where(CommitteeMember.tender_id == tender.id).order_by(CommitteeMember.position)
    rows = list(db.session.scalars(stmt))
    return [m for m in rows if not statuses or m.status in statuses]


@dataclass
class Committee:
    tender: Tender
    experts: list[Expert]
    request: DrawRequest
    bidders: list[Organisation] = field(default_factory=list)

    @property
    def members(self) -> list[CommitteeMember]:
        return members_of(self.tender, MemberStatus.ACCEPTED, MemberStatus.SIGNED_IN)

    @property
    def alternates(self) -> list[CommitteeMember]:
        return [m for m in members_of(self.tender) if m.is_alternate]


@pytest.fixture(name="committee")
def committee_fixture(draw_tender, pool, make_request, create_org, open_bids):
    """A published tender with 3 opened bidders, a pool of 12 experts, drawn, every member accepted."""
    def make(*, experts: int = 12, **request_overrides) -> Committee:
        tender = draw_tender()
        bidders = [create_org(kind=OrganisationKind.COMPANY) for _ in range(3)]
        people = pool(experts)
        db.session.commit()
        request = make_request(tender, **request_overrides)
        drawing.draw(staff_actor(tender), tender.id)
        db.session.commit()
        for m in members_of(tender, MemberStatus.INVITED):
            recusal.accept(expert_actor(m.expert), m.id)
            db.session.commit()
        open_bids(tender, bidders)
        return Committee(tender, people, db.session.get(DrawRequest, request.id), bidders)
    return make


FIXTURES = ("committee_fixture", "draw_tender_fixture", "make_expert_fixture", "make_request_fixture",
            "open_bids_fixture", "pool_fixture", "start_room_fixture")
__all__ = ["SPECIALTY", "Committee", "Role", "expert_actor", "members_of", "staff_actor", *FIXTURES]
