"""The scoring room's Socket.IO namespace ``/room`` (评标室): one room per evaluation.

Connect: authenticated by the session cookie (Flask-Login) or by ``auth={"token": "ebid_..."}``, an API
token, as the opening hall (:mod:`bidding.hall`); anyone else is refused. Every connection joins its
person's own room (``person:<id>``), where per-viewer data (``room.sheet``) arrives.

``join`` ``{evaluation_id}`` is authorised again (:func:`evaluation.room_state.room_access`: signed-in
committee members and supervisors only) and answered with the full state for that viewer
(:func:`evaluation.room_state.room_state`), drafts included, so a reconnecting client that joins again
loses nothing. ``action`` ``{evaluation_id, name, ...}`` runs one room service (:mod:`evaluation.room`),
which checks the rights and the room status again; supervisors may only suspend and resume. Each handler
commits once, or rolls back and answers ``{ok: false, code, message}``.

``watch_clarifications`` ``{tender_id}`` is the bidder's side: the committee's clarification requests to
the bidder's organisations in that tender, then live ``room.clarification`` events.

Presence (在线): one record per connection in :mod:`bidding.hall_presence`'s stores (Redis when
configured, so every web process sees the same room), broadcast whole as ``room.presence`` on every
join and leave (a committee is a handful of people).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import current_app, request
from flask_babel import lazy_gettext as _l
from flask_socketio import Namespace, SocketIO, join_room, leave_room
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from bidding.hall_presence import MemoryPresence, Presence, RedisPresence
from core.actor import Actor
from core.db import db
from core.errors import Conflict, DomainError, Forbidden, ValidationFailed
from core.identity.access import actor_for
from core.identity.models import Person, Role
from core.realtime import publish
from core.socket_auth import connected_person, connecting_person
from evaluation import room
from evaluation.room_errors import NotInRoom, ReadOnly
from evaluation.room_events import CLARIFICATION, NAMESPACE, PRESENCE, person_room, room_name, supervisor_room
from evaluation.room_state import RoomAccess, room_access, room_state, sheet_view
from evaluation.views_room import bidder_orgs_in, bidder_room, clarification_view, for_organisations

log = logging.getLogger(__name__)

PRESENCE_PREFIX = "ebid:room:presence:"
PRESENCE_STORE = "ebid.room_presence"
SUPERVISOR = "supervisor"
SUPERVISOR_ACTIONS = frozenset({"suspend", "resume"})
ACTIONS = frozenset({"save_sheet", "submit_sheet", "vote_chair", "ask_clarification", "raise_dispute",
                     "vote_dispute", "write_summary", "complete", "suspend", "resume"})


class NotJoined(ValidationFailed):
    code = "not_joined"
    default_message = _l("Join the scoring room first (reload the page).")


class PlatformFailure(DomainError):
    status = 503
    code = "platform_error"
    default_message = _l("The step failed on the platform's side; try again, and tell the platform operator if it "
                         "fails again.")


class RoomRedisPresence(RedisPresence):
    """The opening hall's Redis presence records, under the scoring room's own keys."""

    @staticmethod
    def key(evaluation_id: int) -> str:
        return f"{PRESENCE_PREFIX}{evaluation_id}"


def presence_store() -> Presence:
    """The app's scoring-room presence store: Redis when configured (several web processes), else memory."""
    store = current_app.extensions.get(PRESENCE_STORE)
    if store is None:
        settings = current_app.extensions["ebid.settings"]
        store = RoomRedisPresence.from_url(settings.redis_url) if settings.redis_url else MemoryPresence()
        current_app.extensions[PRESENCE_STORE] = store
    return store


def presence_payload(evaluation_id: int) -> dict[str, Any]:
    """Who is connected to the room: one row per person with their connection count, supervisors last."""
    people: dict[int, dict[str, Any]] = {}
    for entry in presence_store().entries(evaluation_id):
        row = people.setdefault(int(entry["person_id"]), {
            "person_id": int(entry["person_id"]), "name": entry.get("name"), "role": entry.get("role"),
            "member_id": entry.get("member_id"), "connections": 0})
        row["connections"] += 1
    rows = sorted(people.values(), key=lambda r: (r["role"] == SUPERVISOR, str(r["name"]), r["person_id"]))
    return {"evaluation_id": evaluation_id, "present": rows}


def actor_in_room(person: Person, access: RoomAccess, source: str | None) -> Actor:
    """The actor of a step taken in the room, in the role the person holds there."""
    role = Role.SUPERVISOR if access.role == SUPERVISOR else Role.EXPERT
    return actor_for(person, role if person.has_role(role) else None, source=source)


def present_members(evaluation_id: int) -> set[int]:
    """The committee members connected to the room now."""
    return {int(e["member_id"]) for e in presence_store().entries(evaluation_id) if e.get("member_id")}


def _int(data: dict[str, Any], key: str, code: str | None = None) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise ValidationFailed(_l("Send %(key)s: a number."), code=code or f"{key}_required", key=key)
    return int(value)


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return "" if value is None else str(value)


def _strings(data: dict[str, Any], key: str) -> dict[str, str] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValidationFailed(_l("Send %(key)s as an object of criterion codes and texts."), code="invalid_sheet",
                               key=key)
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def _answer(exc: DomainError) -> dict[str, Any]:
    return {"ok": False, **exc.to_dict()}


def run_action(actor, evaluation_id: int, name: str, data: dict[str, Any]) -> dict[str, Any]:
    """Call the room service for ``name`` (it checks the rights and the room status); the answer's extras."""
    if name == "save_sheet":
        sheet = room.save_sheet(actor, evaluation_id, _int(data, "bid_opening_id"), _strings(data, "values") or {},
                                _strings(data, "comments"),
                                _int(data, "revision") if data.get("revision") is not None else None)
        return {"sheet": sheet_view(sheet)}
    if name == "submit_sheet":
        return {"sheet": sheet_view(room.submit_sheet(actor, evaluation_id, _int(data, "bid_opening_id")))}
    if name == "vote_chair":
        vote = room.vote_chair(actor, evaluation_id, _int(data, "candidate_id"))
        return {"candidate_id": vote.candidate_id}
    if name == "ask_clarification":
        minutes = _int(data, "minutes") if data.get("minutes") not in (None, "") else 30
        row = room.ask_clarification(actor, evaluation_id, _int(data, "bid_opening_id"), _text(data, "question"),
                                     minutes=minutes)
        publish(CLARIFICATION, clarification_view(row), room=bidder_room(row.bid_opening.tender_id,
                                                                         row.organisation_id), namespace=NAMESPACE)
        return {"clarification_id": row.id}
    if name == "raise_dispute":
        row = room.raise_dispute(actor, evaluation_id, _int(data, "bid_opening_id"), _text(data, "criterion"),
                                 _text(data, "reason"))
        return {"dispute_id": row.id}
    if name == "vote_dispute":
        row = room.vote_dispute(actor, _int(data, "dispute_id"), _text(data, "vote"), _text(data, "reason") or None)
        return {"dispute_id": row.id, "status": row.status.value}
    if name == "write_summary":
        room.write_summary(actor, evaluation_id, _text(data, "text"))
    elif name == "complete":
        room.complete_evaluation(actor, evaluation_id)
    elif name == "suspend":
        room.suspend(actor, evaluation_id, _text(data, "reason"))
    elif name == "resume":
        room.resume(actor, evaluation_id)
    return {}


def allowed(access: RoomAccess, name: str) -> None:
    """Raise unless the viewer's place in the room lets them try ``name`` (the service checks again)."""
    if name not in ACTIONS:
        raise ValidationFailed(_l("Unknown action '%(name)s'."), code="unknown_action", name=name)
    if access.role == SUPERVISOR and name not in SUPERVISOR_ACTIONS:
        raise ReadOnly()
    if access.role != SUPERVISOR and name in SUPERVISOR_ACTIONS:
        raise Forbidden(_l("Only a supervisor suspends or resumes the scoring room."), code="supervisor_required")


class RoomNamespace(Namespace):
    """Socket.IO namespace of the scoring rooms; per connection: the person and the rooms joined."""

    def __init__(self, namespace: str = NAMESPACE) -> None:
        super().__init__(namespace)
        self._lock = threading.Lock()
        self._clients: dict[str, dict[str, Any]] = {}  # sid -> {"person_id", "rooms": {evaluation_id: RoomAccess}}

    # --- connection ---------------------------------------------------------------------------------

    def on_connect(self, auth: Any = None) -> None:
        person = connecting_person(auth, _l("Log in to enter the scoring room."))
        with self._lock:
            self._clients[request.sid] = {"person_id": person.id, "rooms": {}}
        join_room(person_room(person.id))

    def on_disconnect(self, *_reason: Any) -> None:
        with self._lock:
            client = self._clients.pop(request.sid, None)
        for evaluation_id in (client or {}).get("rooms", {}):
            self._left(evaluation_id)

    def _person(self) -> Person:
        with self._lock:
            client = self._clients.get(request.sid)
        return connected_person(client["person_id"] if client else None)

    def _access(self, evaluation_id: int) -> tuple[Person, RoomAccess]:
        person = self._person()
        access = room_access(person.id, evaluation_id)
        if access is None:
            self._evict(evaluation_id)
            raise NotInRoom()
        return person, access

    def _evict(self, evaluation_id: int) -> None:
        """Out of a room this connection joined but may no longer be in (recused, replaced): no more events."""
        with self._lock:
            joined = self._clients.get(request.sid, {}).get("rooms", {}).pop(evaluation_id, None)
        if joined is not None:
            leave_room(room_name(evaluation_id))
            leave_room(supervisor_room(evaluation_id))
            self._left(evaluation_id)

    # --- the room -------------------------------------------------------------------------------------

    def on_join(self, data: Any) -> dict[str, Any]:
        try:
            evaluation_id = _int(data if isinstance(data, dict) else {}, "evaluation_id")
            person, access = self._access(evaluation_id)
            # in the room and in the presence records before the state is read: no event falls in between
            join_room(room_name(evaluation_id))
            if access.role == SUPERVISOR:
                join_room(supervisor_room(evaluation_id))  # every submitted sheet reaches the supervisors
            presence_store().add(evaluation_id, request.sid, {"person_id": person.id, "name": access.name,
                                                              "role": access.role, "member_id": access.member_id})
            try:
                state = room_state(evaluation_id, access, present=present_members(evaluation_id))
                db.session.commit()
            except Exception:
                leave_room(room_name(evaluation_id))
                leave_room(supervisor_room(evaluation_id))
                presence_store().remove(evaluation_id, request.sid)
                raise
        except DomainError as exc:
            db.session.rollback()
            return _answer(exc)
        except Exception:
            db.session.rollback()
            log.exception("room join failed")
            return _answer(PlatformFailure(_l("Joining the room failed on the platform's side; reload the page in "
                                              "a moment, and tell the platform operator if it fails again.")))
        with self._lock:
            self._clients[request.sid]["rooms"][evaluation_id] = access
        presence = self._broadcast_presence(evaluation_id)
        return {"ok": True, "state": state, "presence": presence}

    def on_leave(self, data: Any) -> dict[str, Any]:
        try:
            evaluation_id = _int(data if isinstance(data, dict) else {}, "evaluation_id")
        except DomainError as exc:
            return _answer(exc)
        self._evict(evaluation_id)
        return {"ok": True}

    def on_heartbeat(self, _data: Any = None) -> dict[str, Any]:
        """Keep this connection's presence records fresh (room.js sends it every 25 seconds)."""
        with self._lock:
            rooms = list(self._clients.get(request.sid, {}).get("rooms", {}))
        for evaluation_id in rooms:
            presence_store().touch(evaluation_id, request.sid)
        return {"ok": True}

    def _left(self, evaluation_id: int) -> None:
        if presence_store().remove(evaluation_id, request.sid):
            self._broadcast_presence(evaluation_id)

    def _broadcast_presence(self, evaluation_id: int) -> dict[str, Any]:
        payload = presence_payload(evaluation_id)
        self.socketio.emit(PRESENCE, payload, to=room_name(evaluation_id), namespace=self.namespace)
        return payload

    def _joined(self, evaluation_id: int) -> None:
        with self._lock:
            joined = evaluation_id in self._clients.get(request.sid, {}).get("rooms", {})
        if not joined:
            raise NotJoined()

    def on_state(self, data: Any) -> dict[str, Any]:
        """The current state again (after a missed event, or when the client asks)."""
        try:
            evaluation_id = _int(data if isinstance(data, dict) else {}, "evaluation_id")
            self._joined(evaluation_id)
            _person, access = self._access(evaluation_id)
            state = room_state(evaluation_id, access, present=present_members(evaluation_id))
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            return _answer(exc)
        except Exception:
            db.session.rollback()
            log.exception("room state failed")
            return _answer(PlatformFailure())
        return {"ok": True, "state": state, "presence": presence_payload(evaluation_id)}

    def on_action(self, data: Any) -> dict[str, Any]:
        """One committee step: ``{"evaluation_id", "name", ...}``; the answer says whether it was done."""
        try:
            if not isinstance(data, dict):
                raise ValidationFailed(_l("Send the action as an object with evaluation_id and name."),
                                       code="action_required")
            evaluation_id = _int(data, "evaluation_id")
            self._joined(evaluation_id)
            person, access = self._access(evaluation_id)
            name = str(data.get("name") or "")
            allowed(access, name)
            extra = run_action(actor_in_room(person, access, request.remote_addr),
                               evaluation_id, name, data)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            return _answer(exc)
        except (StaleDataError, IntegrityError):
            db.session.rollback()
            return _answer(Conflict(_l("Someone else changed the room at the same moment; try again."),
                                    code="concurrent_change"))
        except Exception:
            db.session.rollback()
            log.exception("room action failed")
            return _answer(PlatformFailure())
        return {"ok": True, **extra}

    # --- the bidder's side: clarification requests ------------------------------------------------------

    def on_watch_clarifications(self, data: Any) -> dict[str, Any]:
        """A bidder's clarification page: the requests to its organisations in the tender, then live events."""
        try:
            tender_id = _int(data if isinstance(data, dict) else {}, "tender_id")
            person = self._person()
            org_ids = bidder_orgs_in(tender_id, person)
            if not org_ids:
                raise Forbidden(_l("Only a bidder with a bid in this tender sees the committee's clarification "
                                   "requests."), code="bidder_required")
            rows = [clarification_view(c) for c in for_organisations(tender_id, org_ids)]
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            return _answer(exc)
        for org_id in org_ids:
            join_room(bidder_room(tender_id, org_id))
        return {"ok": True, "clarifications": rows}


def register_room(socketio: SocketIO) -> RoomNamespace:
    """Serve the ``/room`` namespace on ``socketio`` (called once per app by the wiring)."""
    namespace = RoomNamespace(NAMESPACE)
    socketio.on_namespace(namespace)
    return namespace
