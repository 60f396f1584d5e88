"""Socket.IO names of the scoring room (评标室): the namespace, room names and server event names."""

from __future__ import annotations

NAMESPACE = "/room"

# server events, sent to the room of one evaluation (or to one viewer's own room)
PROGRESS = "room.progress"            # {member_id, bid_opening_id, filled, total, submitted, at}
PRESENCE = "room.presence"            # {present: [...]}
MEMBERS = "room.members"              # the committee changed (sign-in, recusal, replacement)
SHEET = "room.sheet"                  # a submitted sheet, only to viewers allowed to see it
CLARIFICATION = "room.clarification"  # asked, answered or expired
WARNING = "room.warning"              # deviation warnings after a submission
CHAIR = "room.chair"                  # chair votes count and the elected chair
DISPUTE = "room.dispute"              # raised, voted, decided
SUMMARY = "room.summary"              # the chair's summary
STATUS = "room.status"                # {status, reason}


def room_name(evaluation_id: int) -> str:
    """The Socket.IO room of one evaluation, e.g. ``"evaluation:7"``."""
    return f"evaluation:{evaluation_id}"


def person_room(person_id: int) -> str:
    """A viewer's own room under the namespace, for per-viewer data, e.g. ``"person:12"``."""
    return f"person:{person_id}"


def supervisor_room(evaluation_id: int) -> str:
    """The room of the supervisors watching one evaluation (they read every sheet), e.g. ``"evaluation:7:supervisors"``."""
    return f"evaluation:{evaluation_id}:supervisors"
