"""Events of the opening hall (开标大厅): what the opening services tell the connected clients.

The services call :func:`emit` inside their transaction; the event leaves only once it commits, to the
tender's hall room on the ``/hall`` Socket.IO namespace (every process, through Redis when configured).
"""

from __future__ import annotations

from typing import Any

from core.realtime import publish, room

NAMESPACE = "/hall"


def hall_room(tender_id: int) -> str:
    """The Socket.IO room of one tender's opening hall."""
    return room("hall", tender_id)


def emit(tender_id: int, event: str, data: dict[str, Any]) -> None:
    """Send ``event`` with ``data`` (JSON-serialisable) to the tender's hall after the commit."""
    publish(event, {"tender_id": tender_id, **data}, room=hall_room(tender_id), namespace=NAMESPACE)
