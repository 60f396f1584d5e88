"""A scoring room ready to use: a tender whose opening record is published, a complete committee, the room.

Use the ``make_room`` fixture; import it with the fixtures it builds on::

    from tests.evaluation.room_support import *  # noqa: F403  (make_room and the fixtures it needs)

    def test_something(make_room):
        r = make_room(experts=5, bidders=3)       # 2 bids decrypted, the last bidder's failed
        room.save_sheet(r.member_actor(0), r.evaluation_id, r.bid_ids[0], {"T1": "8"})

``make_room(experts=5, bidders=3, failed=1, signed_in=True, start=True, evaluation_method=None)``: ``bidders`` bidders
submit; the last ``failed`` of them lose their key (cause: bidder). The record is confirmed by every bidder
and signed by the host and the supervisor (published). The committee (``experts`` Expert rows whose persons
hold the expert role, a COMPLETE draw request, one draw round, members ACCEPTED) is inserted directly;
then the host starts the evaluation and, with ``signed_in=True``, every member is set SIGNED_IN (the room
moves to scoring). With ``start=False`` it stops before the start and returns ``(opening, members)``. The platform clock is frozen (the ``frozen`` fixture); move it with ``clock.travel``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from sqlalchemy import func, select

from bidding import opening, opening_decrypt, opening_process, record_service, translog
from bidding.opening_models import BidOpening, BidOpeningStatus
from bidding.sealed_models import Bid, LogEntry
from core.actor import Actor
from core.audit import AuditEvent
from core.clock import clock, now
from core.db import db
from core.identity.access import actor_for
from core.identity.ca import load_ca_certificate
from core.notifications import Notification
from core.pdf import sign_field
from crypto.receipt import parse_log_entry
from evaluation import room, room_flow
from evaluation.pool_models import CommitteeMember, DrawRequest, DrawRound, DrawStatus, Expert, MemberStatus
from evaluation.room_models import ChairVote, Clarification, Dispute, DisputeVote, Evaluation, ScoreSheet
from tests.bidding.conftest import api_as, frozen
from tests.bidding.opening_support import Opening, make_opening_fixture
from tests.bidding.sealed_support import Bidder, kit_fixture

__all__ = ["FULL_SHEET", "Room", "api_as", "committee_events", "frozen", "kit_fixture", "make_opening_fixture", "make_room_fixture",
           "room_actions", "room_snapshot"]

SPECIALTY = "A010101"
FULL_SHEET = {"F1": "pass", "F2": "pass", "Q1": "pass", "Q2": "pass", "R1": "pass", "R2": "pass", "R3": "pass",
              "T1": "10", "T2": "5", "T3": "5", "T4": "5"}
"""A complete sheet for the default criteria (every pass/fail item passes, the technical items score 25 of 30)."""


@dataclass
class Room:
    """The built room: its evaluation, committee, people and bids, with actor shortcuts."""

    opening: Opening
    evaluation_id: int
    members: list[CommitteeMember]   # in draw order; member i is held by experts[i]
    experts: list[Any]               # the experts' Person rows
    bid_ids: list[int]               # BidOpening ids decrypted (evaluated), in bidder order
    failed_bid_ids: list[int]        # BidOpening ids that failed at the opening

    @property
    def evaluation(self) -> Evaluation:
        return db.session.get(Evaluation, self.evaluation_id)

    @property
    def tender(self):
        return self.opening.tender

    @property
    def tender_id(self) -> int:
        return self.opening.tender.id

    @property
    def host(self):
        return self.opening.host

    @property
    def supervisor(self):
        return self.opening.supervisor

    @property
    def bidders(self) -> list[Bidder]:
        return self.opening.bidders

    @property
    def member_ids(self) -> list[int]:
        return [m.id for m in self.members]

    def member_actor(self, i: int) -> Actor:
        return actor_for(self.experts[i], "expert")

    @property
    def host_actor(self) -> Actor:
        return self.opening.host_actor

    @property
    def supervisor_actor(self) -> Actor:
        return self.opening.supervisor_actor

    def bidder_actor(self, i: int) -> Actor:
        return self.opening.bidders[i].actor

    def bidder_of(self, bid_opening_id: int) -> Bidder:
        org_id = db.session.get(BidOpening, bid_opening_id).organisation_id
        return next(b for b in self.opening.bidders if b.org.id == org_id)

    def submit_all(self, values: dict[str, str] | None = None, members: list[int] | None = None) -> None:
        """Members (indexes; all by default) save and submit ``values`` (FULL_SHEET) for every bid; commits."""
        for i in members if members is not None else range(len(self.members)):
            for bid in self.bid_ids:
                room.save_sheet(self.member_actor(i), self.evaluation_id, bid, values or FULL_SHEET)
                room.submit_sheet(self.member_actor(i), self.evaluation_id, bid)
                db.session.commit()

    def elect(self, chair: int = 0) -> None:
        """A majority of the members votes member ``chair`` (index) into the chair; commits."""
        for i in range(len(self.members) // 2 + 1):
            room.vote_chair(self.member_actor(i), self.evaluation_id, self.member_ids[chair])
            db.session.commit()

    def sign_in(self, *indexes: int) -> None:
        """Set members SIGNED_IN (as the recusal sign-in would) and tell the room; commits."""
        for i in indexes:
            member = db.session.get(CommitteeMember, self.members[i].id)
            member.status, member.signed_in_at = MemberStatus.SIGNED_IN, now()
        db.session.flush()
        room_flow.members_changed(self.evaluation_id)
        db.session.commit()


def room_snapshot() -> dict[str, Any]:
    """Everything a refused room action must leave untouched: rows, sheets, statuses, trail and log heads."""
    db.session.expire_all()
    counts = {m.__name__: db.session.scalar(select(func.count()).select_from(m))
              for m in (ScoreSheet, ChairVote, Clarification, Dispute, DisputeVote, AuditEvent, LogEntry, Notification)}
    sheets = [(s.id, s.revision, dict(s.values), dict(s.comments), s.submitted_at)
              for s in db.session.scalars(select(ScoreSheet).order_by(ScoreSheet.id))]
    rooms = [(e.id, e.status, e.version, e.chair_member_id, e.summary)
             for e in db.session.scalars(select(Evaluation).order_by(Evaluation.id))]
    return {"counts": counts, "sheets": sheets, "rooms": rooms}


def room_actions(evaluation_id: int) -> list[str]:
    """The audit actions recorded on the evaluation, in order."""
    return list(db.session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "evaluation",
                                                                   AuditEvent.object_id == str(evaluation_id))
                                   .order_by(AuditEvent.seq)))


def committee_events(tender_id: int) -> list[dict[str, Any]]:
    """The tender's transparency-log entries of kind ``committee``, decoded, in log order."""
    rows = translog.entries(tender_id, 0, translog.size_of(tender_id))
    return [parse_log_entry(r.entry) for r in rows if r.kind == "committee"]


def _decrypt(o: Opening, failed: int) -> None:
    opening.start_decryption(o.host_actor, o.tender.id)
    db.session.commit()
    keep = len(o.bidders) - failed
    for b in o.bidders[:keep]:
        opening_decrypt.submit_content_key(b.actor, o.tender.id, o.bid_of(b).public_id, o.content_key(b))
        db.session.commit()
        opening_process.process_pending(o.tender.id)
    clock.travel(timedelta(minutes=31))
    opening_process.advance_all(o.host_actor)
    db.session.commit()
    for b in o.bidders[keep:]:
        row = o.row_of(b)
        for actor in (o.host_actor, o.supervisor_actor):
            opening_decrypt.decide_failure(actor, o.tender.id, row.id, cause="bidder", reason="key lost",
                                           evidence="bidder's statement")
    db.session.commit()


def _publish_record(o: Opening) -> None:
    record_service.build_record(o.host_actor, o.tender.id)
    db.session.commit()
    for b in o.bidders:
        record_service.confirm(b.actor, o.tender.id)
        db.session.commit()
    pdf = record_service.current_pdf(record_service.get_record(o.tender.id))
    for person, field, actor in ((o.host, "Host", o.host_actor), (o.supervisor, "Supervisor", o.supervisor_actor)):
        key, cert_row = o.kit.certify(person=person)
        db.session.commit()
        cert = x509.load_pem_x509_certificate(cert_row.pem.encode())
        pdf = sign_field(pdf, field, key, cert, [load_ca_certificate()], stamp_text=person.name,
                         reason="开标记录 Opening record", signer_name=person.name)
        record_service.accept_signature(actor, o.tender.id, pdf)
        db.session.commit()


def _committee(o: Opening, create_person, n: int) -> tuple[list[CommitteeMember], list[Any]]:
    persons, experts = [], []
    for i in range(n):
        person = create_person(roles=("expert",), name=f"专家{i + 1} Expert {i + 1}")
        expert = Expert(code=f"E{o.tender.id:04d}{i:03d}", person_id=person.id, name=person.name,
                        specialties=[SPECIALTY], region="370100", employer_name=f"Institute {i + 1}")
        db.session.add(expert)
        persons.append(person)
        experts.append(expert)
    request = DrawRequest(tender_id=o.tender.id, status=DrawStatus.COMPLETE,
                          specialties=[{"code": SPECIALTY, "count": n}], committee_size=n,
                          tenderer_representatives=0, alternates=0, requested_by_id=o.host.id)
    db.session.add(request)
    db.session.flush()
    seed = hashlib.sha256(f"seed {o.tender.id}".encode()).hexdigest()
    codes = sorted(e.code for e in experts)
    rnd = DrawRound(request_id=request.id, number=1, wanted={SPECIALTY: {"count": n, "alternates": 0}},
                    candidates={"specialties": {SPECIALTY: codes}},
                    candidates_sha256=hashlib.sha256(",".join(codes).encode()).hexdigest(),
                    seed_commitment=hashlib.sha256(bytes.fromhex(seed)).hexdigest(), seed=seed,
                    result={SPECIALTY: {"members": codes, "alternates": []}}, drawn_at=now(), drawn_by_id=o.host.id)
    db.session.add(rnd)
    db.session.flush()
    members = []
    for i, expert in enumerate(experts):
        member = CommitteeMember(request_id=request.id, tender_id=o.tender.id, expert_id=expert.id, round_id=rnd.id,
                                 specialty=SPECIALTY, position=i + 1, status=MemberStatus.ACCEPTED,
                                 invited_at=now(), answered_at=now())
        db.session.add(member)
        members.append(member)
    db.session.commit()
    return members, persons


@pytest.fixture(name="make_room")
def make_room_fixture(make_opening, create_person):
    """Build a scoring room; see the module's docstring."""
    def make(experts: int = 5, bidders: int = 3, *, failed: int = 1, signed_in: bool = True, start: bool = True,
             evaluation_method: dict[str, Any] | None = None, prices: list[str] | None = None
             ) -> Room | tuple[Opening, list[CommitteeMember]]:
        o = make_opening(bidders, mode="bidder", custodians=0, guarantee_policy={"mode": "waived_sme"}, prices=prices,
                         **({"evaluation_method": evaluation_method} if evaluation_method is not None else {}))
        _decrypt(o, failed)
        _publish_record(o)
        members, persons = _committee(o, create_person, experts)
        if not start:
            return o, members
        evaluation = room.start_evaluation(o.host_actor, o.tender.id)
        db.session.commit()
        rows = {b.bid_id: b for b in db.session.scalars(select(BidOpening).where(BidOpening.tender_id == o.tender.id))}
        ordered = [rows[db.session.scalar(select(Bid.id).where(Bid.tender_id == o.tender.id, Bid.is_current.is_(True),
                                                                Bid.organisation_id == b.org.id))] for b in o.bidders]
        r = Room(o, evaluation.id, members, persons,
                 [b.id for b in ordered if b.status == BidOpeningStatus.DECRYPTED],
                 [b.id for b in ordered if b.status == BidOpeningStatus.FAILED])
        if signed_in:
            r.sign_in(*range(experts))
        return r
    return make
