"""What the opening hall (开标大厅) shows: who may enter, in which role, and the state snapshot.

Pure functions over plain values (rows read by :mod:`bidding.hall`), table-tested. Two secrecy rules
live here, whatever the rows handed in contain:

* nobody, host and supervisors included, sees a bid's content before its decryption succeeded: a board
  row carries ``form`` (price, duration, quality, project manager...) only when its status is
  ``decrypted``; a draw's seed and result only once it is drawn;
* before the bid deadline the names and the number of bidders are secret (条例 §22): presence and
  check-ins of other bidder organisations are left out until the deadline has passed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

HOST, SUPERVISOR, STAFF, CUSTODIAN, BIDDER = "host", "supervisor", "staff", "custodian", "bidder"
ROLE_ORDER = (HOST, SUPERVISOR, STAFF, CUSTODIAN, BIDDER)

CHECK_IN, START, COMMIT_DRAW, REVEAL_DRAW, DECIDE_FAILURE, CLOSE_WINDOW = (
    "check_in", "start_decryption", "commit_draw", "reveal_draw", "decide_failure", "close_window")
HOST_ACTIONS = frozenset({START, COMMIT_DRAW, REVEAL_DRAW, DECIDE_FAILURE, CLOSE_WINDOW})
ACTIONS = HOST_ACTIONS | {CHECK_IN}

BOARD_KEYS = ("id", "lot", "bidder", "status", "method", "decrypted_at", "failure", "form")
DRAW_KEYS = ("name", "choices", "commitment", "commit_index", "seed", "result", "reveal_index")
CLOSED_STATUSES = frozenset({"opening", "evaluation", "publicity", "awarded", "failed"})


@dataclass(frozen=True)
class AccessFacts:
    """What decides a person's place in one tender's hall (read from the database by the hall)."""

    tender_status: str
    participant_role: str | None = None  # "host" / "supervisor" when named for this opening
    manages: bool = False  # works for the tender's tenderer or agency
    supervisor_role: bool = False  # holds the platform's supervisor role (行政监督)
    custodian: bool = False  # named key custodian of the tender
    bidder_orgs: tuple[tuple[int, str], ...] = ()  # (id, name) of own organisations with a current bid


@dataclass(frozen=True)
class Access:
    """A person's place in the hall: role, the organisation shown for them, what they may do."""

    role: str
    name: str  # organisation display name, or the person's name when they act for none
    organisation_id: int | None = None
    actions: frozenset[str] = field(default_factory=frozenset)

    @property
    def read_only(self) -> bool:
        return not self.actions


def hall_access(facts: AccessFacts, person_name: str, organisation_id: int | None = None,
                staff_org_name: str | None = None) -> Access | None:
    """The person's place in the hall, or None when they may not enter.

    The host acts; a named supervisor only agrees on failure causes; other tenderer/agency staff,
    supervisors not named for this opening and key custodians watch; bidders enter for an organisation
    with a current bid in the tender (``organisation_id`` chooses among several) and may check in.
    """
    if facts.tender_status == "draft":
        return None
    if facts.participant_role == HOST:
        return Access(HOST, staff_org_name or person_name, actions=HOST_ACTIONS)
    if facts.participant_role == SUPERVISOR:
        return Access(SUPERVISOR, person_name, actions=frozenset({DECIDE_FAILURE}))
    if facts.manages:
        return Access(STAFF, staff_org_name or person_name)
    if facts.supervisor_role:
        return Access(SUPERVISOR, person_name)
    if facts.custodian:
        return Access(CUSTODIAN, person_name)
    orgs = dict(facts.bidder_orgs)
    if organisation_id is None and len(orgs) == 1:
        organisation_id = next(iter(orgs))
    if organisation_id in orgs:
        return Access(BIDDER, orgs[organisation_id], organisation_id, frozenset({CHECK_IN}))
    return None


def bidders_public(tender_status: str, deadline: datetime | None, at: datetime) -> bool:
    """True once the bid deadline has passed: from then on the bidder list is published (DOMAIN §5 step 4)."""
    return tender_status in CLOSED_STATUSES or (deadline is not None and at >= deadline)


def presence_view(entries: Iterable[Mapping[str, Any]], public: bool) -> list[dict[str, Any]]:
    """Who is in the room, by display name and role, with their connection count.

    ``entries`` are the raw presence records (one per connection: ``role``, ``name``), or the rows of a view
    already counted (with ``connections``; a stored view is filtered and ordered again). Bidders are left out
    while the bidder list is secret.
    """
    counts: dict[tuple[str, str], int] = {}
    for entry in entries:
        if entry["role"] == BIDDER and not public:
            continue
        key = (entry["role"], entry["name"])
        counts[key] = counts.get(key, 0) + int(entry.get("connections", 1))
    return _ordered_view(counts)


def _presence_rank(key: tuple[str, str]) -> tuple[int, str]:
    """The order the presence list is shown in: by role (:data:`ROLE_ORDER`), then by name."""
    role, name = key
    return (ROLE_ORDER.index(role) if role in ROLE_ORDER else 99, name)


def _ordered_view(counts: Mapping[tuple[str, str], int]) -> list[dict[str, Any]]:
    return [{"role": role, "name": name, "connections": n}
            for (role, name), n in sorted(counts.items(), key=lambda kv: _presence_rank(kv[0])) if n > 0]


def _counts(view: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], int]:
    return {(row["role"], row["name"]): int(row["connections"]) for row in view}


def presence_changes(before: Iterable[Mapping[str, Any]],
                     after: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What a ``hall.presence`` delta carries to turn the view ``before`` into ``after``.

    One row per (role, name) whose count differs, with the absolute new count (0: gone), in the view's
    order. Absolute values make a delta idempotent: applying it twice gives the same list.
    """
    old, new = _counts(before), _counts(after)
    changed = {key: new.get(key, 0) for key in old.keys() | new.keys() if old.get(key, 0) != new.get(key, 0)}
    return [{"role": role, "name": name, "connections": n}
            for (role, name), n in sorted(changed.items(), key=lambda kv: _presence_rank(kv[0]))]


def apply_presence_changes(view: Iterable[Mapping[str, Any]],
                           changes: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The view after a delta (what hall.js does): absolute counts replace, 0 removes; the view's order."""
    counts = _counts(view)
    for row in changes:
        counts[(row["role"], row["name"])] = int(row["connections"])
    return _ordered_view(counts)


def board_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """One bid's public board row: only known keys, and the content only after a successful decryption."""
    out = {key: row.get(key) for key in BOARD_KEYS}
    if out["status"] != "decrypted":
        out["form"] = None
        out["decrypted_at"] = None
    return out


def draw_view(draw: Mapping[str, Any]) -> dict[str, Any]:
    """A random draw as shown: the commitment always, the seed and the result only once drawn."""
    out = {key: draw.get(key) for key in DRAW_KEYS}
    if out["result"] is None or out["seed"] is None:
        out["seed"] = out["result"] = out["reveal_index"] = None
    return out


def checkins_view(checkins: Iterable[Mapping[str, Any]], public: bool,
                  own_organisation_id: int | None) -> list[dict[str, Any]]:
    """Check-ins shown to a viewer: all once the bidder list is public, else only the viewer's own.

    Each check-in has ``organisation_id``, ``organisation`` (display name) and ``at`` (ISO time).
    """
    return [{"organisation": c["organisation"], "at": c["at"]} for c in checkins
            if public or (own_organisation_id is not None and c["organisation_id"] == own_organisation_id)]


def phase_of(tender_status: str, session_phase: str | None, deadline: datetime | None, at: datetime) -> str:
    """The hall's phase: ``waiting`` before the deadline, the opening session's phase after it.

    A failed tender (fewer than 3 bids on every lot, 流标) or a cancelled one shows that instead.
    """
    if tender_status in ("failed", "cancelled"):
        return tender_status
    if session_phase:
        return session_phase
    if tender_status == "published" and (deadline is None or at < deadline):
        return "waiting"
    return "checkin"


def countdown(phase: str, deadline: datetime | None, decryption_deadline: datetime | None) -> dict[str, Any] | None:
    """What the countdown runs to: the bid deadline while waiting, the window's end while decrypting."""
    if phase == "waiting" and deadline is not None:
        return {"kind": "deadline", "end": deadline.isoformat()}
    if phase == "decrypting" and decryption_deadline is not None:
        return {"kind": "decryption", "end": decryption_deadline.isoformat()}
    return None


def snapshot(*, tender: Mapping[str, Any], session: Mapping[str, Any] | None, access: Access, at: datetime,
             board: Iterable[Mapping[str, Any]] = (), announcements: Iterable[Mapping[str, Any]] = (),
             draws: Iterable[Mapping[str, Any]] = (), checkins: Iterable[Mapping[str, Any]] = (),
             presence: Iterable[Mapping[str, Any]] = (), presence_seq: int = 0) -> dict[str, Any]:
    """The full state a client gets on joining (and on every reconnect).

    ``tender``: id, code, title, status, deadline (aware datetime), mode; ``session``: phase,
    decryption_deadline, window_minutes (None before the opening session exists). ``presence``: the room's
    presence as last broadcast, ``presence_seq`` the sequence number of that broadcast (0: none yet), so
    that the client can apply the following ``hall.presence`` deltas (or raw records, for tests).
    """
    public = bidders_public(tender["status"], tender["deadline"], at)
    phase = phase_of(tender["status"], session and session.get("phase"), tender["deadline"], at)
    decryption_deadline = session.get("decryption_deadline") if session else None
    own = access.organisation_id if access.role == BIDDER else None
    return {
        "tender_id": tender["id"], "tender_code": tender["code"], "tender_title": tender["title"],
        "mode": tender.get("mode"), "phase": phase, "server_time": at.isoformat(),
        "deadline": tender["deadline"].isoformat() if tender["deadline"] else None,
        "decryption_deadline": decryption_deadline.isoformat() if decryption_deadline else None,
        "window_minutes": session.get("window_minutes") if session else None,
        "countdown": countdown(phase, tender["deadline"], decryption_deadline),
        "bidders_public": public,
        "you": {"role": access.role, "name": access.name, "organisation_id": access.organisation_id,
                "actions": sorted(access.actions), "read_only": access.read_only},
        "presence": presence_view(presence, public), "presence_seq": presence_seq,
        "checkins": checkins_view(checkins, public, own),
        "board": [board_row(row) for row in board] if public else [],
        "announcements": [dict(a) for a in announcements],
        "draws": [draw_view(d) for d in draws],
    }
