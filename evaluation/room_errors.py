"""Refusals of the scoring room (评标室), each saying what was wrong and what to do."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from core.errors import Conflict, Forbidden, NotFound, RuleViolation


class RoomNotFound(NotFound):
    code = "evaluation_not_found"
    default_message = _l("This evaluation does not exist; check the link.")


class NotInRoom(Forbidden):
    code = "not_in_room"
    default_message = _l("Only the signed-in members of the committee and the supervisors may enter this "
                         "evaluation room; sign in with your recusal declaration first.")


class ReadOnly(Forbidden):
    code = "read_only"
    default_message = _l("Supervisors watch the evaluation room but cannot score or vote; they may only suspend "
                         "or resume it.")


class NotChair(Forbidden):
    code = "not_chair"
    default_message = _l("Only the committee chair may do this; elect a chair first if there is none.")


class RoomSuspended(RuleViolation):
    code = "suspended"
    default_message = _l("The room was suspended by the supervisor (%(reason)s); wait until the supervisor "
                         "resumes it.")


class TenderSuspended(RuleViolation):
    code = "tender_suspended"
    default_message = _l("The tender's procedure is suspended until its pending objections are answered; the "
                         "room accepts no changes until then.")


class WrongStage(RuleViolation):
    code = "wrong_stage"
    default_message = _l("The evaluation is %(status)s; this can only be done while it is %(allowed)s.")


class RoomRefused(RuleViolation):
    code = "room_refused"


class StaleRevision(Conflict):
    code = "stale_revision"
    default_message = _l("Your sheet was saved elsewhere in the meantime (you sent revision %(sent)s, it is now "
                         "at %(current)s); reload the room to continue from the latest draft.")
