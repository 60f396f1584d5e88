"""Public random draws at the opening (随机参数抽取, DOMAIN §2.2 items 3–4), e.g. the downward coefficient K.

The set of values is fixed in the tender (``evaluation_method["random_parameters"]["K"]``, a list of
decimal strings in the published order). The draw is commit-then-reveal on the tender's transparency log:

1. commit (before the draw; the host does it before starting decryption, so before any price is known):
   a 32-byte seed from the CSPRNG; ``SHA-256(seed)`` is appended to the log (a ``draw`` entry with event
   ``draw-commit``, the name and the choices) and a tree head is signed. The seed stays undisclosed.
2. reveal (the draw, live in the hall): the seed is appended (event ``draw-reveal``) with the result.

The result is a pure function of the seed, so anyone recomputes it (:func:`draw_result`)::

    digest = HMAC-SHA256(key = seed, message = UTF-8("ebid/draw/v1\\n" + tender code + "\\n" + name))
    index  = int.from_bytes(digest, "big") mod len(choices)        (bias < 2^-240 for up to 65536 choices)
    result = choices[index]

:func:`verify_draw` checks, from the log entries alone, that the commitment was logged before the
reveal, that the revealed seed hashes to it, and that the result follows from the seed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from bidding import hall_events, translog
from bidding.models import Tender
from bidding.opening import OpeningRefused, _open_session, announce, draw_payload, require_role
from bidding.opening_models import OpeningPhase, ParticipantRole, RandomDraw
from bidding.receipts import epoch_ms
from bidding.sealed_models import LogEntry
from core import audit
from core.actor import Actor
from core.clock import now
from core.db import db
from core.errors import NotFound, ValidationFailed
from core.i18n import N_
from crypto.receipt import parse_log_entry

DRAW_LABEL = "ebid/draw/v1"
MAX_CHOICES = 1000
MAX_CHOICES_TEXT = 256  # the log entry holds the list as text


def draw_index(seed: bytes, tender_code: str, name: str, count: int) -> int:
    """The index drawn from ``count`` choices by ``seed`` (see the module text)."""
    if count < 1:
        raise ValueError("a draw needs at least one choice")
    message = f"{DRAW_LABEL}\n{tender_code}\n{name}".encode()
    return int.from_bytes(hmac.new(seed, message, hashlib.sha256).digest(), "big") % count


def draw_result(seed: bytes, tender_code: str, name: str, choices: list[str]) -> str:
    """The value drawn from ``choices`` (in the tender's order) by ``seed``."""
    return choices[draw_index(seed, tender_code, name, len(choices))]


def commitment_of(seed: bytes) -> str:
    return hashlib.sha256(seed).hexdigest()


def parameter_choices(tender: Tender, name: str) -> list[str]:
    """The choices the tender fixes for the random parameter ``name``; refused when absent or malformed."""
    spec = ((tender.evaluation_method or {}).get("random_parameters") or {}).get(name)
    if not isinstance(spec, list) or not 2 <= len(spec) <= MAX_CHOICES:
        raise ValidationFailed(_l("Tender %(tender)s fixes no set of values for the random parameter %(name)s "
                                  "(evaluation_method.random_parameters.%(name)s: a list of 2 to 1000 values)."),
                               code="no_parameter_set", tender=tender.code, name=name)
    values = []
    for item in spec:
        try:
            value = Decimal(str(item))
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite() or str(item) != str(item).strip():
            raise ValidationFailed(_l("The values of %(name)s must be decimal numbers (%(value)s is not)."),
                                   code="bad_parameter_set", name=name, value=str(item))
        values.append(str(item))
    if len(set(values)) != len(values) or len(_choices_text(values)) > MAX_CHOICES_TEXT:
        raise ValidationFailed(_l("The values of %(name)s must be distinct and fit in 256 characters as a list."),
                               code="bad_parameter_set", name=name)
    return values


def _choices_text(choices: list[str]) -> str:
    return json.dumps(choices, separators=(",", ":"))


def _draw(tender_id: int, name: str) -> RandomDraw | None:
    return db.session.scalar(select(RandomDraw).where(RandomDraw.tender_id == tender_id, RandomDraw.name == name))


def commit_draw(actor: Actor, tender_id: int, name: str) -> RandomDraw:
    """The host commits to a fresh seed for ``name``: SHA-256(seed) goes into the log before the draw."""
    tender, session = _open_session(tender_id)
    require_role(actor, tender, ParticipantRole.HOST)
    existing = _draw(tender.id, name)
    if existing is not None:
        return existing
    if session.phase not in (OpeningPhase.CHECKIN, OpeningPhase.DECRYPTING, OpeningPhase.DECRYPTED):
        raise OpeningRefused(_l("Random parameters are drawn before the record; the opening is in phase "
                                "%(phase)s."), code="wrong_phase", phase=session.phase.value)
    choices = parameter_choices(tender, name)
    seed = secrets.token_bytes(32)
    at = now()
    commitment = commitment_of(seed)
    index = translog.append_event(tender, "draw", event="draw-commit", name=name, commitment=commitment,
                                  choices=_choices_text(choices), at_ms=epoch_ms(at))
    translog.sign_head(tender, at)
    row = RandomDraw(tender_id=tender.id, name=name, choices=choices, commitment=commitment, commit_index=index,
                     committed_at=at, seed=seed.hex())
    db.session.add(row)
    db.session.flush()
    audit.record(actor, "opening.draw_commit", "tender", tender.id,
                 {"name": name, "commitment": commitment, "log_index": index})
    announce(tender.id, "draw", N_("Seed committed for %(name)s: SHA-256 %(commitment)s (log entry %(index)s)."),
             name=name, commitment=commitment, index=index)
    hall_events.emit(tender.id, "hall.draw", draw_payload(row))
    return row


def reveal_draw(actor: Actor, tender_id: int, name: str) -> RandomDraw:
    """The draw: the host reveals the committed seed; the result follows from it and is logged."""
    tender, _session = _open_session(tender_id)
    require_role(actor, tender, ParticipantRole.HOST)
    row = _draw(tender.id, name)
    if row is None:
        raise NotFound(_l("No seed was committed for %(name)s; commit one first."), code="draw_not_committed",
                       name=name)
    if row.drawn_at is not None:
        return row
    seed = bytes.fromhex(row.seed)
    result = draw_result(seed, tender.code, name, list(row.choices))
    at = now()
    row.reveal_index = translog.append_event(tender, "draw", event="draw-reveal", name=name,
                                             commitment=row.commitment, seed=row.seed, result=result,
                                             at_ms=epoch_ms(at))
    translog.sign_head(tender, at)
    row.result, row.drawn_at, row.drawn_by_id = result, at, actor.person_id
    db.session.flush()
    audit.record(actor, "opening.draw_reveal", "tender", tender.id,
                 {"name": name, "seed": row.seed, "result": result, "log_index": row.reveal_index})
    announce(tender.id, "draw", N_("%(name)s drawn: %(result)s (seed %(seed)s)."), name=name, result=result,
             seed=row.seed)
    hall_events.emit(tender.id, "hall.draw", draw_payload(row))
    return row


@dataclass(frozen=True)
class DrawCheck:
    ok: bool
    name: str
    result: str | None
    message: str


def check_draw_entries(tender_code: str, name: str, commit: dict[str, Any], reveal: dict[str, Any],
                       commit_index: int, reveal_index: int) -> DrawCheck:
    """Recompute a draw from its two log entries (pure: what anyone can do with the public log)."""
    def fail(message: str) -> DrawCheck:
        return DrawCheck(False, name, reveal.get("result"), message)
    if commit_index >= reveal_index:
        return fail("the commitment was not logged before the reveal")
    if commit.get("commitment") != reveal.get("commitment"):
        return fail("the reveal names another commitment")
    seed = bytes.fromhex(reveal.get("seed", ""))
    if commitment_of(seed) != commit["commitment"]:
        return fail("the revealed seed does not hash to the commitment")
    choices = json.loads(commit.get("choices", "[]"))
    expected = draw_result(seed, tender_code, name, choices)
    if expected != reveal.get("result"):
        return fail(f"the seed draws {expected}, not {reveal.get('result')}")
    return DrawCheck(True, name, expected, "the draw follows from the committed seed")


def verify_draw(tender_id: int, name: str) -> DrawCheck:
    """Check a draw from the tender's log entries (not from the draw's row)."""
    tender = db.session.get(Tender, tender_id)
    commit = reveal = None
    for entry in db.session.scalars(select(LogEntry).where(LogEntry.tender_id == tender_id, LogEntry.kind == "draw")
                                    .order_by(LogEntry.index)):
        body = parse_log_entry(entry.entry)
        if body["name"] != name:
            continue
        if body["event"] == "draw-commit" and commit is None:
            commit = (entry.index, body)
        elif body["event"] == "draw-reveal" and reveal is None:
            reveal = (entry.index, body)
    if commit is None or reveal is None:
        return DrawCheck(False, name, None, "the log holds no complete draw of this name")
    return check_draw_entries(tender.code, name, commit[1], reveal[1], commit[0], reveal[0])
