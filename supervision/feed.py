"""The supervisors' live feed (监督实时动态): every audit event of the centre, as it happens.

Every new audit event is published after its commit to the Socket.IO namespace ``/supervision``, room
``supervisors``; only persons holding the supervisor role (or administrators) may connect and join it.
A connection may narrow what it receives with a filter (tender id, organisation id, event kind prefix),
applied by the page; the server sends the same compact event to the room. The payload carries no
secrets: the audit trail never holds any (core.audit scrubs them).
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_socketio import Namespace, SocketIO, join_room

from core import audit
from core.audit import AuditEvent
from core.clock import as_utc
from core.identity.models import Role
from core.realtime import publish
from core.socket_auth import connecting_person

NAMESPACE = "/supervision"
ROOM = "supervisors"
EVENT = "supervision.event"


def tender_of(event: AuditEvent) -> int | None:
    """The tender an event belongs to: its object, or ``tender_id`` in its summary."""
    if event.object_type == "tender" and event.object_id and event.object_id.isdigit():
        return int(event.object_id)
    value = (event.summary or {}).get("tender_id")
    return int(value) if isinstance(value, int) or (isinstance(value, str) and value.isdigit()) else None


def event_payload(event: AuditEvent) -> dict[str, Any]:
    return {"seq": event.seq, "at": as_utc(event.at).isoformat(), "action": event.action,
            "kind": event.action.split(".", 1)[0], "actor": event.actor_name, "role": event.actor_role,
            "organisation_id": event.organisation_id, "object_type": event.object_type,
            "object_id": event.object_id, "tender_id": tender_of(event)}


def _publish(event: AuditEvent) -> None:
    publish(EVENT, event_payload(event), room=ROOM, namespace=NAMESPACE)


def may_watch(person: Any) -> bool:
    return person.has_role(Role.SUPERVISOR) or person.has_role(Role.ADMIN)


class SupervisionNamespace(Namespace):
    def on_connect(self, auth: Any = None) -> None:
        person = connecting_person(auth, _l("Log in as a supervisor to follow the live feed."))
        if not may_watch(person):
            raise ConnectionRefusedError({"code": "not_supervisor",
                                          "message": str(_l("Only supervisors follow the live feed."))})
        join_room(ROOM)


def register_feed(socketio: SocketIO) -> None:
    """Attach the namespace and start publishing audit events to it."""
    socketio.on_namespace(SupervisionNamespace(NAMESPACE))
    audit.add_listener(_publish)
