"""The opening hall's Socket.IO namespace ``/hall`` (开标大厅): one room per tender.

Connect: authenticated by the session cookie (Flask-Login) or by ``auth={"token": "ebid_..."}``, an API
token as for the bids API; anyone else is refused. ``join`` (a tender id) is authorised again, for
that tender (:func:`bidding.hall_state.hall_access`); the client then gets ``hall.state``, the full
current state, and from then on the live events of the opening services (``hall.phase``,
``hall.board``, ``hall.checkin``, ``hall.announcement``, ``hall.draw``, ``hall.record``) and
``hall.presence``, coalesced per room (:mod:`bidding.hall_broadcast`). A reconnecting client joins again and
so gets the current state again. Every join is answered, also when the platform fails (``platform_error``).

Actions (``action`` event: check-in, the host's steps, a supervisor's agreement on a failure cause) are
checked against the role held in the hall before the opening service (which checks again) runs;
supervisors and other watchers are read-only. Each handler commits once, or rolls back and answers
with the refusal's message. docs/opening-hall.md lists the events and payloads.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import current_app, request
from flask_babel import lazy_gettext as _l
from flask_socketio import Namespace, SocketIO, join_room, leave_room

from bidding import opening
from bidding.hall_broadcast import DEFAULT_INTERVAL, RETRY, UNCHANGED, PresenceBroadcaster
from bidding.hall_events import NAMESPACE, hall_room
from bidding.hall_queries import (
    PresenceRace,
    access_for,
    actor_in_hall,
    hall_state,
    presence_payload,
    presence_store,
)
from bidding.hall_state import (
    CHECK_IN,
    CLOSE_WINDOW,
    COMMIT_DRAW,
    DECIDE_FAILURE,
    HOST_ACTIONS,
    REVEAL_DRAW,
    START,
    SUPERVISOR,
    Access,
)
from bidding.models import Tender
from core.db import db
from core.errors import DomainError, Forbidden, NotFound, ValidationFailed
from core.identity.models import Person
from core.socket_auth import connected_person, connecting_person

log = logging.getLogger(__name__)

ENTER_RECORD = "enter_record"
BROADCASTER = "ebid.hall_broadcaster"


class HallRefused(Forbidden):
    code = "hall_refused"
    default_message = _l("You may not enter this opening hall: it is open to the bidders with a bid in the tender, "
                         "the tenderer's and agency's staff, the host and the supervisors.")


class ReadOnly(Forbidden):
    code = "read_only"
    default_message = _l("You watch this opening: only the host (主持人) named by the tenderer or agency takes "
                         "this step.")


class SupervisorReadOnly(ReadOnly):
    code = "supervisor_read_only"
    default_message = _l("Supervisors watch the opening and agree on the causes of failed decryptions; "
                         "this step belongs to the host.")


class PlatformFailure(DomainError):
    status = 503
    code = "platform_error"
    default_message = _l("The step failed on the platform's side; try again, and tell the platform operator if it "
                         "fails again.")


class NotAtHall(ValidationFailed):
    code = "not_joined"
    default_message = _l("Join the tender's opening hall first (reload the page).")


def _tender_id(data: Any) -> int:
    value = data.get("tender_id") if isinstance(data, dict) else data
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise ValidationFailed(_l("Say which tender's hall to join: a tender id."), code="tender_id_required")
    return int(value)


def _answer(exc: DomainError) -> dict[str, Any]:
    return {"ok": False, **exc.to_dict()}


def _run_action(name: str, actor, tender_id: int, data: dict[str, Any]) -> None:
    """Call the opening service for ``name`` (the service checks the rights again)."""
    if name == CHECK_IN:
        opening.check_in(actor, tender_id, remote_addr=request.remote_addr)
    elif name == START:
        opening.start_decryption(actor, tender_id)
    elif name == ENTER_RECORD:
        opening.enter_record(actor, tender_id)
    elif name in (COMMIT_DRAW, REVEAL_DRAW):
        from bidding import opening_draws

        verb = opening_draws.commit_draw if name == COMMIT_DRAW else opening_draws.reveal_draw
        verb(actor, tender_id, str(data.get("name") or ""))
    elif name == DECIDE_FAILURE:
        from bidding import opening_decrypt

        opening_decrypt.decide_failure(actor, tender_id, int(data.get("bid_opening_id") or 0),
                                       cause=str(data.get("cause") or ""), reason=str(data.get("reason") or ""),
                                       evidence=str(data.get("evidence") or ""))
    elif name == CLOSE_WINDOW:
        from bidding import opening_decrypt

        opening_decrypt.close_window(actor, tender_id)


def allowed(access: Access, name: str) -> None:
    """Raise unless the hall role may take the action ``name`` (the service checks its own rules too)."""
    actions = set(access.actions) | ({ENTER_RECORD} if START in access.actions else set())
    if name in actions:
        return
    if access.role == SUPERVISOR:
        raise SupervisorReadOnly()
    if name == CHECK_IN:
        raise Forbidden(_l("Only bidders with a bid in this tender check in."), code="bidder_required")
    raise ReadOnly()


class HallNamespace(Namespace):
    """Socket.IO namespace of the opening halls; per connection: the person and the halls joined."""

    def __init__(self, namespace: str = NAMESPACE) -> None:
        super().__init__(namespace)
        self._lock = threading.Lock()
        self._clients: dict[str, dict[str, Any]] = {}  # sid -> {"person_id", "halls": {tender_id: Access}}

    # --- connection ---------------------------------------------------------------------------------

    def on_connect(self, auth: Any = None) -> None:
        person = connecting_person(auth, _l("Log in to enter the opening hall."))
        with self._lock:
            self._clients[request.sid] = {"person_id": person.id, "halls": {}}

    def on_disconnect(self, *_reason: Any) -> None:
        with self._lock:
            client = self._clients.pop(request.sid, None)
        for tender_id in (client or {}).get("halls", {}):
            self._left(tender_id)

    # --- halls --------------------------------------------------------------------------------------

    def _person(self) -> Person:
        with self._lock:
            client = self._clients.get(request.sid)
        return connected_person(client["person_id"] if client else None)

    def _access(self, tender_id: int, organisation_id: int | None = None) -> tuple[Person, Tender, Access]:
        person = self._person()
        tender = db.session.get(Tender, tender_id)
        if tender is None:
            raise NotFound(_l("There is no tender %(id)s."), id=tender_id)
        access = access_for(tender, person, organisation_id)
        if access is None:
            raise HallRefused()
        return person, tender, access

    def on_join(self, data: Any) -> dict[str, Any]:
        try:
            tender_id = _tender_id(data)
            org = data.get("organisation_id") if isinstance(data, dict) else None
            person, tender, access = self._access(tender_id, int(org) if str(org or "").isdigit() else None)
            # in the presence records, and in the room, before the snapshot is read: every presence delta
            # recorded after the snapshot's presence_seq then reaches this client (an earlier one that
            # arrives too is ignored by seq), and the joiner itself is in the room's next broadcast
            presence_store().add(tender_id, request.sid, {"role": access.role, "name": access.name,
                                                          "person_id": person.id})
            join_room(hall_room(tender_id))
            try:
                state = hall_state(tender, access)
                db.session.commit()
            except Exception:
                leave_room(hall_room(tender_id))
                presence_store().remove(tender_id, request.sid)
                raise
        except DomainError as exc:
            db.session.rollback()
            return _answer(exc)
        except Exception:  # e.g. the database refuses a connection: the client still gets an answer
            db.session.rollback()
            log.exception("hall join failed")
            return _answer(PlatformFailure(_l("Joining the hall failed on the platform's side; reload the page "
                                              "in a moment, and tell the platform operator if it fails again.")))
        with self._lock:
            self._clients[request.sid]["halls"][tender_id] = access
        self.emit("hall.state", state, room=request.sid)
        self.broadcaster().mark(tender_id)
        return {"ok": True, "role": access.role, "actions": sorted(access.actions)}

    def on_leave(self, data: Any) -> dict[str, Any]:
        try:
            tender_id = _tender_id(data)
        except DomainError as exc:
            return _answer(exc)
        with self._lock:
            joined = self._clients.get(request.sid, {}).get("halls", {}).pop(tender_id, None)
        if joined is not None:
            leave_room(hall_room(tender_id))
            self._left(tender_id)
        return {"ok": True}

    def _left(self, tender_id: int) -> None:
        if presence_store().remove(tender_id, request.sid):
            self.broadcaster().mark(tender_id)

    # --- presence broadcasts --------------------------------------------------------------------------

    def broadcaster(self) -> PresenceBroadcaster:
        """This app's presence broadcaster in this process (made on first use, with its timer)."""
        app = current_app._get_current_object()
        broadcaster = app.extensions.get(BROADCASTER)
        if broadcaster is None:
            with self._lock:
                broadcaster = app.extensions.get(BROADCASTER)
                if broadcaster is None:
                    store = presence_store()
                    broadcaster = PresenceBroadcaster(
                        lambda tender_id: self._send_presence(app, tender_id),
                        interval=float(app.config.get("EBID_HALL_PRESENCE_INTERVAL", DEFAULT_INTERVAL)),
                        claim=store.claim, start_task=self.socketio.start_background_task)
                    app.extensions[BROADCASTER] = broadcaster
        return broadcaster

    def _send_presence(self, app, tender_id: int) -> str | None:
        """Send the room's presence changes since its last broadcast (from the timer, outside any request)."""
        with app.app_context():
            tender = db.session.get(Tender, tender_id)
            if tender is None:
                return UNCHANGED
            try:
                payload = presence_payload(tender)
            except PresenceRace:
                return RETRY
            if payload is None:
                return UNCHANGED
            self.socketio.emit("hall.presence", payload, to=hall_room(tender_id), namespace=self.namespace)
            return None

    def _joined(self, tender_id: int) -> Access:
        with self._lock:
            access = self._clients.get(request.sid, {}).get("halls", {}).get(tender_id)
        if access is None:
            raise NotAtHall()
        return access

    def on_state(self, data: Any) -> dict[str, Any]:
        """Send the current state again (after the deadline passes, or when the client asks)."""
        try:
            tender_id = _tender_id(data)
            joined = self._joined(tender_id)
            _person, tender, access = self._access(tender_id, joined.organisation_id)
            state = hall_state(tender, access)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            return _answer(exc)
        self.emit("hall.state", state, room=request.sid)
        # the state lists the presence as last broadcast: if it changed since (e.g. the deadline passed and
        # the bidders may now be shown), the next tick sends the difference
        self.broadcaster().mark(tender_id)
        return {"ok": True}

    def on_heartbeat(self, _data: Any = None) -> dict[str, Any]:
        """Keep this connection's presence records fresh (hall.js sends it every 25 seconds)."""
        with self._lock:
            halls = list(self._clients.get(request.sid, {}).get("halls", {}))
        for tender_id in halls:
            presence_store().touch(tender_id, request.sid)
        return {"ok": True}

    def on_action(self, data: Any) -> dict[str, Any]:
        """Take an opening step: ``{"tender_id", "action", ...}``; the answer says whether it was done."""
        try:
            if not isinstance(data, dict):
                raise ValidationFailed(_l("Send the step as an object with tender_id and action."),
                                       code="action_required")
            tender_id = _tender_id(data)
            joined = self._joined(tender_id)
            person, tender, access = self._access(tender_id, joined.organisation_id)
            name = str(data.get("action") or "")
            if name not in HOST_ACTIONS | {CHECK_IN, ENTER_RECORD}:
                raise ValidationFailed(_l("Unknown opening step '%(action)s'."), code="unknown_action", action=name)
            allowed(access, name)
            _run_action(name, actor_in_hall(person, tender, access, request.remote_addr), tender_id, data)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            return _answer(exc)
        except Exception:
            db.session.rollback()
            log.exception("hall action failed")
            return _answer(PlatformFailure(_l("The step failed on the platform's side; try again, and tell the "
                                          "platform operator if it fails again.")))
        return {"ok": True}


def register_hall(socketio: SocketIO) -> HallNamespace:
    """Serve the ``/hall`` namespace on ``socketio`` (called once per app by the wiring)."""
    namespace = HallNamespace(NAMESPACE)
    socketio.on_namespace(namespace)
    return namespace
