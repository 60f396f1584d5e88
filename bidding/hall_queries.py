"""Reads of the opening hall (开标大厅): a person's place in a tender's hall and the state they are sent.

The rules (who enters as what, what is hidden) are the pure functions of :mod:`bidding.hall_state`;
this module only gathers their inputs from the database and from the presence store.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_babel import gettext
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bidding import opening, opening_process
from bidding.hall_presence import MemoryPresence, Presence, RedisPresence
from bidding.hall_state import (
    HOST,
    SUPERVISOR,
    Access,
    AccessFacts,
    bidders_public,
    hall_access,
    presence_changes,
    presence_view,
    snapshot,
)
from bidding.models import Tender, TenderCustodian, TenderStatus
from bidding.opening_models import CheckIn, OpeningSession
from bidding.sealed_checks import lock_tender
from bidding.sealed_models import Bid
from core.actor import Actor
from core.clock import as_utc, now
from core.db import db
from core.identity.access import actor_for
from core.identity.models import Person, Role

MANAGER_ROLES = (Role.TENDERER, Role.AGENCY)


def presence_store() -> Presence:
    """The app's presence store: Redis when configured (several web processes), else process memory."""
    store = current_app.extensions.get("ebid.hall_presence")
    if store is None:
        settings = current_app.extensions["ebid.settings"]
        store = RedisPresence.from_url(settings.redis_url) if settings.redis_url else MemoryPresence()
        current_app.extensions["ebid.hall_presence"] = store
    return store


def _staff_grant(person: Person, tender: Tender):
    return next((g for g in person.grants if g.role in MANAGER_ROLES and tender.is_managed_by(g.organisation_id)),
                None)


def access_facts(tender: Tender, person: Person) -> AccessFacts:
    """What decides the person's place in the tender's hall."""
    bidder_org_ids = {g.organisation_id for g in person.grants if g.role == Role.BIDDER}
    bidder_orgs: tuple[tuple[int, str], ...] = ()
    if bidder_org_ids:
        rows = db.session.execute(select(Bid.organisation_id).where(
            Bid.tender_id == tender.id, Bid.is_current.is_(True), Bid.organisation_id.in_(bidder_org_ids))).scalars()
        with_bid = set(rows)
        bidder_orgs = tuple(sorted((g.organisation_id, g.organisation.name) for g in person.grants
                                   if g.role == Role.BIDDER and g.organisation_id in with_bid))
    custodian = db.session.scalar(select(TenderCustodian.id).where(
        TenderCustodian.tender_id == tender.id, TenderCustodian.person_id == person.id)) is not None
    return AccessFacts(tender_status=tender.status.value, participant_role=opening.role_of(tender, person.id),
                       manages=_staff_grant(person, tender) is not None,
                       supervisor_role=person.has_role(Role.SUPERVISOR), custodian=custodian,
                       bidder_orgs=bidder_orgs)


def access_for(tender: Tender, person: Person, organisation_id: int | None = None) -> Access | None:
    """The person's place in the tender's hall, or None when they may not enter."""
    grant = _staff_grant(person, tender)
    return hall_access(access_facts(tender, person), person.name, organisation_id,
                       grant.organisation.name if grant else None)


def actor_in_hall(person: Person, tender: Tender, access: Access, source: str | None) -> Actor:
    """The actor for an action taken in the hall, in the role the person holds there."""
    if access.role == HOST:
        grant = _staff_grant(person, tender)
        if grant is not None:
            return actor_for(person, grant.role, grant.organisation_id, source=source)
        return actor_for(person, source=source)
    if access.role == SUPERVISOR:
        return actor_for(person, Role.SUPERVISOR, source=source)
    if access.organisation_id is not None:
        return actor_for(person, Role.BIDDER, access.organisation_id, source=source)
    return actor_for(person, source=source)


def ensure_opening(tender: Tender) -> OpeningSession | None:
    """The tender's opening session, made (and committed) on first sight once the tender is at its opening.

    A decryption window found over is closed here too (as on the opening API's requests), so that the hall
    shows the fallback or the failures at once even when the scheduler is late.
    """
    session = opening.get_session(tender.id)
    if session is None and tender.status in opening.OPEN_STATUSES:
        lock_tender(tender.id)
        session = opening.ensure_session(tender)
        db.session.commit()
    if session is not None and window_over(session.phase.value, session.decryption_deadline,
                                           session.window_closed_at):
        opening_process.advance(Actor.system(source="hall"), tender.id)
        session = opening.get_session(tender.id)
    return session


def window_over(phase: str, deadline, closed_at) -> bool:
    """True when the decryption window has ended but its end was not processed yet."""
    return phase == "decrypting" and closed_at is None and deadline is not None and now() >= as_utc(deadline)


def _checkins(tender_id: int) -> list[dict[str, Any]]:
    rows = db.session.scalars(select(CheckIn).where(CheckIn.tender_id == tender_id)
                              .options(selectinload(CheckIn.organisation)).order_by(CheckIn.at, CheckIn.id))
    return [{"organisation_id": r.organisation_id, "organisation": r.organisation.name,
             "at": as_utc(r.at).isoformat()} for r in rows]


def tender_facts(tender: Tender) -> dict[str, Any]:
    return {"id": tender.id, "code": tender.code, "title": tender.title, "status": tender.status.value,
            "deadline": as_utc(tender.bid_deadline_at) if tender.bid_deadline_at else None,
            "mode": tender.decryption_mode.value}


def is_public(tender: Tender) -> bool:
    """Whether the bidder list is public (the deadline has passed)."""
    return bidders_public(tender.status.value, as_utc(tender.bid_deadline_at) if tender.bid_deadline_at else None,
                          now())


def hall_state(tender: Tender, access: Access) -> dict[str, Any]:
    """The full state for one viewer: phase, clocks, presence, check-ins, board, announcements, draws."""
    session = ensure_opening(tender)
    session_facts = None
    if session is not None:
        session_facts = {"phase": session.phase.value, "window_minutes": session.window_minutes,
                         "decryption_deadline": as_utc(session.decryption_deadline)
                         if session.decryption_deadline else None}
    has_rows = session is not None
    # the presence as last broadcast, with its sequence number (one stored value: the two always match), so
    # that the deltas that follow apply to exactly this list; the joiner appears with the next broadcast
    presence_seq, presence = presence_store().sent(tender.id)
    state = snapshot(tender=tender_facts(tender), session=session_facts, access=access, at=now(),
                     board=opening.board(tender) if has_rows else (),
                     announcements=opening.announcements(tender.id),
                     draws=opening.draws(tender.id), checkins=_checkins(tender.id),
                     presence=presence, presence_seq=presence_seq)
    state["participants"] = [{"name": p.person.name, "role": p.role.value} for p in opening.participants(tender.id)]
    state["failed_reason"] = _failed_reason(tender)
    return state


def _failed_reason(tender: Tender) -> str | None:
    """Why a tender failed at its deadline (流标): fewer than 3 bids on every lot."""
    if tender.status != TenderStatus.FAILED:
        return None
    return gettext("Fewer than three bids were received on every lot: nothing can be opened (流标). "
                   "The tenderer may re-tender.")


class PresenceRace(Exception):
    """Another process recorded a presence broadcast of the room meanwhile: send nothing, try again later."""


def presence_payload(tender: Tender) -> dict[str, Any] | None:
    """The room's next ``hall.presence`` delta (the same payload for every client), or None when nothing changed.

    The current view is diffed against the view last broadcast; the new view and its sequence number are
    recorded (compare-and-set on the previous number) before the caller sends, so each number is sent with
    one content only. ``full`` marks a delta from an empty base (the room's first broadcast, or its record
    expired): it is the whole list, and clients replace theirs.
    """
    store = presence_store()
    seq, last = store.sent(tender.id)
    view = presence_view(store.entries(tender.id), is_public(tender))
    changes = presence_changes(last, view)
    if not changes:
        return None
    if not store.record_sent(tender.id, seq + 1, view):
        raise PresenceRace(tender.id)
    payload: dict[str, Any] = {"tender_id": tender.id, "seq": seq + 1, "changes": changes}
    if seq == 0:
        payload["full"] = True
    return payload
