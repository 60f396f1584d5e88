"""The expert draw (评标专家随机抽取) of a tender: the request, verifiable rounds, top-ups (补抽), export, verify.

A round freezes the candidate list (DOMAIN §3 exclusions applied, each excluded expert with its reasons),
commits to a fresh 32-byte seed in the tender's transparency log (``draw.commit``: SHA-256 of the seed,
SHA-256 of the frozen list, what is wanted), signs a tree head whose root becomes the public beacon,
draws (:func:`evaluation.draw_rules.draw_committee`), then reveals the seed (``draw.reveal``: the seed,
the beacon, SHA-256 of the result). Log entries carry codes and hashes only, never names.

Anyone holding the export (:func:`export_document`) recomputes every round without the database
(:func:`verify_document`); :func:`verify_tender` runs the same check on the stored rounds and log.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from bidding import translog
from bidding.models import Tender, TenderStatus
from bidding.opening_models import BidOpening
from bidding.policy import require_manager
from bidding.receipts import epoch_ms, key_id_hex, log_key
from bidding.sealed_checks import lock_tender
from bidding.sealed_models import LogEntry
from core import audit
from core.actor import Actor
from core.clock import now
from core.db import db
from core.errors import DomainError, NotFound
from core.identity.access import is_admin
from core.identity.models import Organisation
from crypto import merkle
from crypto.keys import public_key_pem
from crypto.receipt import DocumentFormatError, parse_log_entry, verify_tree_head
from evaluation import draw_rules as R
from evaluation.draw_errors import DrawRefused, NoDrawRequest
from evaluation.experts import draws_for_tenderer
from evaluation.pool_models import (
    ACTIVE_MEMBER_STATUSES,
    CommitteeMember,
    DrawRequest,
    DrawRound,
    DrawStatus,
    Expert,
    MemberStatus,
)
from evaluation.recusal import invite, publish_status

EXPORT_FORMAT = "ebid/expert-draw-export/v1"
DRAWABLE = (TenderStatus.PUBLISHED, TenderStatus.OPENING, TenderStatus.EVALUATION)


def request_of(tender_id: int) -> DrawRequest | None:
    return db.session.scalar(select(DrawRequest).where(DrawRequest.tender_id == tender_id))


def require_request(tender_id: int) -> DrawRequest:
    request = request_of(tender_id)
    if request is None:
        raise NoDrawRequest()
    return request


def _tender(tender_id: int) -> Tender:
    tender = db.session.get(Tender, tender_id)
    if tender is None:
        raise NotFound()
    return tender


def require_manager_or_admin(actor: Actor, tender: Tender) -> None:
    """The tender's managers (tenderer or agency staff) or a platform administrator."""
    if not is_admin(actor):
        require_manager(actor, tender)


def request_draw(actor: Actor, tender_id: int, *, specialties: Iterable[tuple[str, int]], committee_size: int,
                 tenderer_representatives: int = 0, alternates: int = 2, is_remote: bool = True,
                 host_region: str | None = None, local_cap: int | None = None, venues: Iterable[str] = (),
                 excluded_usccs: Iterable[str] = (), frequency_cap: int | None = None,
                 check_in_at: datetime | None = None) -> DrawRequest:
    """Create (or, before any round, change) the tender's draw request (抽取申请)."""
    tender = _tender(tender_id)
    require_manager(actor, tender)
    if tender.status not in DRAWABLE:
        raise DrawRefused(_l("Experts are drawn for a published tender; tender %(tender)s is %(status)s."),
                          code="tender_not_drawable", tender=tender.code, status=tender.status.value)
    terms = R.RequestTerms(specialties=tuple((c.strip().upper(), int(n)) for c, n in specialties),
                           committee_size=committee_size, tenderer_representatives=tenderer_representatives,
                           alternates=alternates, host_region=host_region or None, local_cap=local_cap,
                           frequency_cap=frequency_cap, excluded_usccs=tuple(excluded_usccs),
                           venues=tuple(v.strip() for v in venues))
    problems = R.check_request(terms)
    if problems:
        fields: dict[str, list[Any]] = {}
        for p in problems:
            fields.setdefault(p.field, []).append(p.message)
        raise DrawRefused(problems[0].message, code="bad_request", fields=fields)
    request = request_of(tender.id)
    if request is not None and request.rounds:
        raise DrawRefused(_l("The experts of tender %(tender)s are already drawn; the request can no longer "
                             "change (use a top-up draw when seats are short)."), code="already_drawn",
                          tender=tender.code)
    values = {"specialties": [{"code": c, "count": n} for c, n in terms.specialties],
              "committee_size": committee_size, "tenderer_representatives": tenderer_representatives,
              "alternates": alternates, "is_remote": is_remote, "host_region": terms.host_region,
              "local_cap": local_cap, "venues": list(terms.venues), "excluded_usccs": list(terms.excluded_usccs),
              "frequency_cap": frequency_cap, "check_in_at": check_in_at}
    if request is None:
        request = DrawRequest(tender_id=tender.id, requested_by_id=actor.person_id, requested_at=now(), **values)
        db.session.add(request)
    else:
        for name, value in values.items():
            setattr(request, name, value)
    db.session.flush()
    audit.record(actor, "draw.requested", "tender", tender.id,
                 {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()})
    return request


# --- rounds --------------------------------------------------------------------------------------------

def bidder_usccs(tender_id: int) -> frozenset[str]:
    """USCCs of the tender's bidders (known once the bids are opened)."""
    stmt = (select(Organisation.uscc).join(BidOpening, BidOpening.organisation_id == Organisation.id)
            .where(BidOpening.tender_id == tender_id))
    return frozenset(db.session.scalars(stmt))


def parties_of(tender: Tender, request: DrawRequest) -> R.Parties:
    return R.Parties(tenderer_uscc=tender.tenderer.uscc, agency_uscc=tender.agency.uscc if tender.agency else None,
                     bidder_usccs=bidder_usccs(tender.id), excluded_usccs=frozenset(request.excluded_usccs or []),
                     frequency_cap=request.frequency_cap)


def facts_of(expert: Expert, draws: int = 0) -> R.ExpertFacts:
    return R.ExpertFacts(code=expert.code, specialties=tuple(expert.specialties or ()), region=expert.region,
                         employer_uscc=expert.employer_uscc, avoidance_usccs=tuple(expert.avoidance_usccs or ()),
                         is_available=expert.is_available, is_penalised=expert.is_penalised,
                         is_supervision_staff=expert.is_supervision_staff, draws_for_tenderer=draws)


def draw(actor: Actor, tender_id: int) -> DrawRound:
    """The initial draw: members and alternates per specialty, members invited."""
    tender = lock_tender(tender_id)
    require_manager_or_admin(actor, tender)
    request = require_request(tender.id)
    if request.status != DrawStatus.REQUESTED or request.rounds:
        raise DrawRefused(_l("The experts of tender %(tender)s are already drawn; a top-up draw (补抽) is possible "
                             "only when seats are short."), code="already_drawn", tender=tender.code)
    wanted = {s["code"]: {"count": int(s["count"]), "alternates": request.alternates} for s in request.specialties}
    return _run_round(actor, tender, request, "initial", wanted, request.local_cap)


def deficits(request: DrawRequest) -> dict[str, int]:
    """Empty seats per specialty: wanted less active members (invited, accepted, signed in)."""
    active: dict[str, int] = {}
    for m in request.members:
        if m.status in ACTIVE_MEMBER_STATUSES:
            active[m.specialty] = active.get(m.specialty, 0) + 1
    total = R.RequestTerms((), request.committee_size, request.tenderer_representatives or 0).expert_seats
    missing = total - sum(active.values())
    out: dict[str, int] = {}
    for s in request.specialties:
        gap = min(max(0, int(s["count"]) - active.get(s["code"], 0)), missing - sum(out.values()))
        if gap > 0:
            out[s["code"]] = gap
    return out


def top_up(actor: Actor, tender_id: int) -> DrawRound:
    """A top-up draw (补抽) over the candidates not drawn yet, when invitations ran out of alternates."""
    tender = lock_tender(tender_id)
    require_manager_or_admin(actor, tender)
    request = require_request(tender.id)
    gaps = deficits(request)
    if request.status != DrawStatus.SHORT or not gaps:
        raise DrawRefused(_l("A top-up draw is for a committee short of experts with no alternate left; tender "
                             "%(tender)s is %(status)s."), code="not_short", tender=tender.code,
                          status=request.status.value)
    wanted = {code: {"count": n, "alternates": request.alternates} for code, n in gaps.items()}
    cap = request.local_cap
    if cap is not None:
        local = sum(1 for m in request.members if m.status in ACTIVE_MEMBER_STATUSES | {MemberStatus.WAITING}
                    and R.is_local(m.expert.region, request.host_region))
        cap = max(0, cap - local)
    return _run_round(actor, tender, request, "top_up", wanted, cap)


def _run_round(actor: Actor, tender: Tender, request: DrawRequest, purpose: str, wanted: dict[str, dict[str, int]],
               cap: int | None) -> DrawRound:
    experts = list(db.session.scalars(select(Expert).order_by(Expert.code)))
    counts = draws_for_tenderer(tender.tenderer_id)
    already = [m.expert.code for m in request.members]
    candidates, excluded = R.freeze_candidates(
        [facts_of(e, counts.get(e.id, 0)) for e in experts], parties_of(tender, request), wanted,
        host_region=request.host_region, local_cap=cap, already_drawn=already)
    for code, w in sorted(wanted.items()):
        supply = len(candidates["specialties"][code])
        if supply < w["count"]:
            raise DrawRefused(_l("Only %(supply)s eligible experts hold specialty %(specialty)s, and %(count)s are "
                                 "needed: widen the request (another specialty, fewer exclusions) or add experts "
                                 "to the pool."), code="not_enough_experts", supply=supply, specialty=code,
                              count=w["count"], fields={"specialties": [code]})
    number = len(request.rounds) + 1
    seed = secrets.token_bytes(32)
    at = now()
    commitment = R.sha256_hex(seed)
    candidates_sha = R.sha256_hex(R.canonical(candidates))
    commit_index = translog.append_event(tender, "draw.commit", round=number, purpose=purpose, commitment=commitment,
                                         candidates_sha256=candidates_sha, wanted=R.wanted_text(wanted),
                                         at_ms=epoch_ms(at))
    translog.sign_head(tender, at, appended=True)
    row = DrawRound(request=request, number=number, purpose=purpose, wanted=wanted, candidates=candidates,
                    candidates_sha256=candidates_sha, excluded=excluded, seed_commitment=commitment,
                    commit_log_index=commit_index, committed_at=at)
    db.session.add(row)
    db.session.flush()
    audit.record(actor, "draw.commit", "tender", tender.id,
                 {"round": number, "purpose": purpose, "commitment": commitment, "candidates_sha256": candidates_sha,
                  "log_index": commit_index, "excluded": len(excluded)})
    head = translog.latest_head(tender.id)
    beacon = head.root_hash if head is not None else None
    result = R.draw_committee(seed, beacon, tender.code, number, candidates, wanted)
    row.seed, row.beacon, row.result, row.drawn_at, row.drawn_by_id = seed.hex(), beacon, result, at, actor.person_id
    row.reveal_log_index = translog.append_event(
        tender, "draw.reveal", round=number, commitment=commitment, seed=seed.hex(),
        result_sha256=R.sha256_hex(R.canonical(result)), at_ms=epoch_ms(at), **({"beacon": beacon} if beacon else {}))
    translog.sign_head(tender, at, appended=True)
    _seat(actor, tender, request, row, result)
    audit.record(actor, "draw.reveal", "tender", tender.id,
                 {"round": number, "seed": seed.hex(), "beacon": beacon, "log_index": row.reveal_log_index,
                  "result_sha256": R.sha256_hex(R.canonical(result))})
    publish_status(request)
    return row


def _seat(actor: Actor, tender: Tender, request: DrawRequest, row: DrawRound, result: dict[str, Any]) -> None:
    """Committee rows for the round: members (invited) then alternates (waiting), in draw order."""
    by_code = {e.code: e for e in db.session.scalars(select(Expert).where(Expert.code.in_(
        [c for part in result.values() for c in part["members"] + part["alternates"]])))}
    position = max((m.position for m in request.members), default=0)
    venues = list(request.venues or [])
    seated: list[CommitteeMember] = []
    for kind in ("members", "alternates"):
        for code in sorted(result):
            for expert_code in result[code][kind]:
                position += 1
                member = CommitteeMember(request=request, tender_id=tender.id, expert=by_code[expert_code], round=row,
                                         specialty=code, position=position, is_alternate=kind == "alternates",
                                         status=MemberStatus.WAITING,
                                         venue=venues[(position - 1) % len(venues)] if venues else None)
                db.session.add(member)
                seated.append(member)
    db.session.flush()
    for member in seated:
        if not member.is_alternate:
            invite(actor, member)
    request.status = DrawStatus.SHORT if R.shortfall(result, row.wanted) else DrawStatus.DRAWN
    db.session.flush()


# --- export and verification ---------------------------------------------------------------------------

def round_record(row: DrawRound) -> dict[str, Any]:
    return {"number": row.number, "purpose": row.purpose, "wanted": row.wanted, "candidates": row.candidates,
            "candidates_sha256": row.candidates_sha256, "excluded": row.excluded,
            "seed_commitment": row.seed_commitment, "seed": row.seed, "beacon": row.beacon, "result": row.result,
            "commit_log_index": row.commit_log_index, "reveal_log_index": row.reveal_log_index}


def export_body(tender: Tender) -> dict[str, Any]:
    """Rounds, their log entries with inclusion proofs, the latest signed tree head and the log's public key."""
    request = require_request(tender.id)
    entries = db.session.scalars(select(LogEntry).where(LogEntry.tender_id == tender.id,
                                                        LogEntry.kind.in_(("draw.commit", "draw.reveal")))
                                 .order_by(LogEntry.index))
    head = translog.latest_head(tender.id)
    log = []
    for e in entries:
        proof = translog.inclusion_proof(tender.id, e.index, head.tree_size) if head and e.index < head.tree_size \
            else []
        log.append({"index": e.index, "entry": base64.b64encode(bytes(e.entry)).decode(),
                    "proof": [h.hex() for h in proof]})
    return {"format": EXPORT_FORMAT, "tender": tender.code, "rounds": [round_record(r) for r in request.rounds],
            "log": log, "head": json.loads(head.document) if head else None,
            "log_key": public_key_pem(log_key().public_key()).decode()}


def log_key_id(body: dict[str, Any]) -> str:
    """Key id of the log key named in an export (compare it with the platform's published keys)."""
    return key_id_hex(serialization.load_pem_public_key(body["log_key"].encode()))


def anchor_check(tender_code: str, body: dict[str, Any]) -> R.RoundCheck:
    """The draw entries are in the tender's log: each proven included in a tree head signed by the log key."""
    check = R.RoundCheck(0)
    try:
        if not body.get("head"):
            check.problems.append(_l("No signed tree head of the tender's log covers the draw."))
            return check
        head = verify_tree_head(body["head"], serialization.load_pem_public_key(body["log_key"].encode()))
        if head.log_id != f"ebid/tender/{tender_code}":
            check.problems.append(_l("The tree head belongs to another log (%(log)s).", log=head.log_id))
        for e in body["log"]:
            merkle.verify_inclusion(merkle.leaf_hash(base64.b64decode(e["entry"], validate=True)), e["index"],
                                    head.tree_size, [bytes.fromhex(h) for h in e["proof"]], head.root_hash)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        check.problems.append(_l("The draw entries are not proven to be in the tender's signed log (%(error)s).",
                                 error=type(exc).__name__))
    return check


def export_document(tender: Tender) -> bytes:
    """The draw as one canonical JSON document: every round and its log entries, with a SHA-256 over them."""
    body = export_body(tender)
    return R.canonical({**body, "sha256": R.sha256_hex(R.canonical(body))})


def _entries_by_round(log: list[tuple[int, dict[str, Any]]]) -> dict[int, dict[str, tuple[int, dict[str, Any]]]]:
    out: dict[int, dict[str, tuple[int, dict[str, Any]]]] = {}
    for index, body in log:
        out.setdefault(body["round"], {}).setdefault(body["kind"], (index, body))  # the first entry counts
    return out


def check_rounds(tender_code: str, rounds: list[dict[str, Any]], log: list[tuple[int, dict[str, Any]]]
                 ) -> list[R.RoundCheck]:
    """Check every round against the log entries found for it (their order in the log, not the round's say)."""
    found = _entries_by_round(log)
    checks = []
    for rnd in rounds:
        pair = found.get(rnd.get("number"), {})
        commit, reveal = pair.get("draw.commit"), pair.get("draw.reveal")
        check = R.check_round(tender_code, rnd, commit[1] if commit else None, reveal[1] if reveal else None)
        for name, entry in (("commit_log_index", commit), ("reveal_log_index", reveal)):
            if entry is not None and rnd.get(name) != entry[0]:
                check.problems.append(_l("The round names log index %(stated)s, but its entry is at %(found)s.",
                                         stated=rnd.get(name), found=entry[0]))
        checks.append(check)
    if not rounds:
        checks.append(R.RoundCheck(0, [_l("No round was drawn.")]))
    return checks


def verify_tender(tender_id: int) -> list[R.RoundCheck]:
    """Recompute every stored round of the tender and check it against the tender's log."""
    tender = _tender(tender_id)
    body = export_body(tender)
    log = [(e["index"], parse_log_entry(base64.b64decode(e["entry"]))) for e in body["log"]]
    return [*check_rounds(tender.code, body["rounds"], log), *_failed(anchor_check(tender.code, body))]


def _failed(check: R.RoundCheck) -> list[R.RoundCheck]:
    return [] if check.ok else [check]


def verify_document(data: bytes) -> tuple[str | None, list[R.RoundCheck]]:
    """Verify an exported draw offline (no database): (tender code, checks); a broken file is one failed check."""
    def broken(message: Any) -> tuple[str | None, list[R.RoundCheck]]:
        return None, [R.RoundCheck(0, [message])]
    try:
        doc = json.loads(data.decode("ascii"))
        body = {k: v for k, v in doc.items() if k != "sha256"}
        if R.canonical(doc) != data or doc.get("sha256") != R.sha256_hex(R.canonical(body)):
            return broken(_l("The file was changed after the export: its SHA-256 does not match its content."))
        if body.get("format") != EXPORT_FORMAT:
            return broken(_l("This is not an expert draw export (%(format)s).", format=EXPORT_FORMAT))
        log = [(e["index"], parse_log_entry(base64.b64decode(e["entry"], validate=True))) for e in body["log"]]
        return body["tender"], [*check_rounds(body["tender"], body["rounds"], log),
                                *_failed(anchor_check(body["tender"], body))]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError, binascii.Error,
            DocumentFormatError, DomainError) as exc:
        return broken(_l("The file is not a readable draw export (%(error)s).", error=type(exc).__name__))
