"""Rules of the expert draw (评标专家随机抽取), as pure functions: request checks, exclusion, the draw itself.

* :func:`check_request`: a committee (评标委员会) has an odd number of at least 5 members, experts at least
  2/3 of it (招标投标法 §37; 条例 §46), the specialty headcounts add up to the expert seats, and so on.
* :func:`exclusion_reasons`: why an expert may not sit (DOMAIN §3): employer is the tenderer, the agency or
  a bidder; a declared avoidance unit (回避单位) is one of them; penalised; supervision staff; unavailable;
  no wanted specialty; over the frequency cap for this tenderer; employer in the request's excluded units.
* :func:`freeze_candidates`: the frozen candidate list of a round, and who was excluded with the reasons.
* :func:`draw_committee`: the draw, a pure function of the seed, the public beacon and the frozen list::

      round key = HMAC-SHA256(seed, "ebid/expert-draw/v1\\n" tender "\\n" round "\\n" beacon-or-"-")
      stream    = HMAC-SHA256(round key, specialty "\\n" || counter as 8 bytes), cut in 64-bit words
      order     = Fisher-Yates shuffle of the sorted codes; j uniform in [0, i] by rejection sampling
                  (a word >= 2^64 - (2^64 mod (i + 1)) is skipped, so there is no modulo bias)

  Specialties are drawn in code order; each walks its order and takes members, then alternates, skipping
  an expert already drawn (one holding several specialties sits once) and a local expert once the cap
  on experts local to the host region is used up (the cap counts members and alternates alike).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from flask_babel import lazy_gettext as _l

from core.identity import uscc as uscc_mod

DRAW_LABEL = "ebid/expert-draw/v1"
MAX_SPECIALTIES = 10
MAX_ALTERNATES = 10
MAX_COMMITTEE = 25
SPECIALTY_CODE = re.compile(r"^[A-Z0-9]{1,16}$")
REGION_CODE = re.compile(r"^[0-9]{6}$")

REASON_LABELS = {
    "employer_is_tenderer": _l("works for the tenderer"),
    "employer_is_agency": _l("works for the tendering agency"),
    "employer_is_bidder": _l("works for a bidder"),
    "avoidance_is_party": _l("declared the tenderer, the agency or a bidder as a unit to avoid"),
    "penalised": _l("penalised for bidding misconduct"),
    "supervision_staff": _l("staff of the supervising authority"),
    "unavailable": _l("not available"),
    "no_specialty": _l("holds none of the wanted specialties"),
    "frequency_cap": _l("drawn too often for this tenderer"),
    "excluded_unit": _l("works for or declared a unit the request excludes"),
    "already_drawn": _l("already drawn for this tender"),
}
PARTY_REASONS = ("employer_is_tenderer", "employer_is_agency", "employer_is_bidder", "avoidance_is_party",
                 "excluded_unit")


# --- the request ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RequestTerms:
    """What a draw request (抽取申请) asks for, as the rules see it."""

    specialties: tuple[tuple[str, int], ...]
    committee_size: int
    tenderer_representatives: int = 0
    alternates: int = 2
    host_region: str | None = None
    local_cap: int | None = None
    frequency_cap: int | None = None
    excluded_usccs: tuple[str, ...] = ()
    venues: tuple[str, ...] = ()

    @property
    def expert_seats(self) -> int:
        return self.committee_size - self.tenderer_representatives


@dataclass(frozen=True)
class Problem:
    field: str
    message: Any


def check_request(terms: RequestTerms) -> list[Problem]:
    """Every rule the request breaks (empty when it may be drawn)."""
    out: list[Problem] = []
    size, reps = terms.committee_size, terms.tenderer_representatives
    if size < 5 or size % 2 == 0 or size > MAX_COMMITTEE:
        out.append(Problem("committee_size", _l("The committee must have an odd number of members from 5 to "
                                                "%(max)s (you asked for %(size)s).", max=MAX_COMMITTEE, size=size)))
    if reps < 0 or (size - reps) * 3 < size * 2:
        out.append(Problem("tenderer_representatives", _l(
            "Experts must be at least 2/3 of the committee: with %(size)s members at most %(max)s may be "
            "tenderer representatives (you asked for %(reps)s).", size=size, max=max(0, size // 3), reps=reps)))
    if not terms.specialties:
        out.append(Problem("specialties", _l("Name at least one specialty and how many experts it needs.")))
    if len(terms.specialties) > MAX_SPECIALTIES:
        out.append(Problem("specialties", _l("At most %(max)s specialties per request.", max=MAX_SPECIALTIES)))
    seen: set[str] = set()
    for code, count in terms.specialties:
        if not SPECIALTY_CODE.match(code or ""):
            out.append(Problem("specialties", _l("'%(code)s' is not a specialty code (upper-case letters and digits, "
                                                 "e.g. A010101).", code=code)))
        elif code in seen:
            out.append(Problem("specialties", _l("Specialty %(code)s is named twice; give it once with the total "
                                                 "headcount.", code=code)))
        seen.add(code)
        if count < 1:
            out.append(Problem("specialties", _l("Specialty %(code)s needs at least one expert.", code=code)))
    total = sum(count for _code, count in terms.specialties)
    if terms.specialties and total != terms.expert_seats:
        out.append(Problem("specialties", _l(
            "The specialty headcounts add up to %(total)s, but the committee has %(seats)s expert seats "
            "(%(size)s members less %(reps)s tenderer representatives).",
            total=total, seats=terms.expert_seats, size=size, reps=reps)))
    if not 0 <= terms.alternates <= MAX_ALTERNATES:
        out.append(Problem("alternates", _l("Alternates per specialty: from 0 to %(max)s.", max=MAX_ALTERNATES)))
    if terms.host_region is not None and not REGION_CODE.match(terms.host_region):
        out.append(Problem("host_region", _l("The host region is a 6-digit administrative division code, "
                                             "e.g. 370200.")))
    if terms.local_cap is not None:
        if terms.host_region is None:
            out.append(Problem("host_region", _l("A cap on local experts needs the host region.")))
        if not 0 <= terms.local_cap <= max(terms.expert_seats, 0):
            out.append(Problem("local_cap", _l("The cap on local experts is between 0 and the %(seats)s expert "
                                               "seats.", seats=terms.expert_seats)))
    if terms.frequency_cap is not None and terms.frequency_cap < 1:
        out.append(Problem("frequency_cap", _l("The frequency cap is at least 1 draw per year, or empty.")))
    for value in terms.excluded_usccs:
        problem = uscc_mod.problem(value)
        if problem is not None:
            out.append(Problem("excluded_usccs", _l("Excluded unit %(uscc)s: %(problem)s", uscc=value,
                                                    problem=problem.message)))
    for venue in terms.venues:
        if not venue.strip() or len(venue) > 200:
            out.append(Problem("venues", _l("A venue is named in 1 to 200 characters.")))
    return out


# --- exclusion -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExpertFacts:
    """What the exclusion rules need to know about an expert."""

    code: str
    specialties: tuple[str, ...]
    region: str
    employer_uscc: str | None = None
    avoidance_usccs: tuple[str, ...] = ()
    is_available: bool = True
    is_penalised: bool = False
    is_supervision_staff: bool = False
    draws_for_tenderer: int = 0  # times drawn for this tenderer in the last year


@dataclass(frozen=True)
class Parties:
    """The tender's parties and the request's extra exclusions."""

    tenderer_uscc: str
    agency_uscc: str | None = None
    bidder_usccs: frozenset[str] = frozenset()  # known only after the bid deadline
    excluded_usccs: frozenset[str] = frozenset()
    frequency_cap: int | None = None


def conflict_reasons(expert: ExpertFacts, parties: Parties) -> list[str]:
    """The reasons tied to the tender's parties (also checked again at sign-in, once bidders are known)."""
    out = []
    employer = expert.employer_uscc
    declared = set(expert.avoidance_usccs)
    if employer and employer == parties.tenderer_uscc:
        out.append("employer_is_tenderer")
    if employer and parties.agency_uscc and employer == parties.agency_uscc:
        out.append("employer_is_agency")
    if employer and employer in parties.bidder_usccs:
        out.append("employer_is_bidder")
    party_units = {parties.tenderer_uscc, *parties.bidder_usccs} | ({parties.agency_uscc} - {None})
    if declared & party_units:
        out.append("avoidance_is_party")
    if (employer and employer in parties.excluded_usccs) or declared & parties.excluded_usccs:
        out.append("excluded_unit")
    return out


def exclusion_reasons(expert: ExpertFacts, parties: Parties, wanted: Iterable[str]) -> list[str]:
    """Every reason ``expert`` may not be drawn for a committee needing the ``wanted`` specialties."""
    out = conflict_reasons(expert, parties)
    if expert.is_penalised:
        out.append("penalised")
    if expert.is_supervision_staff:
        out.append("supervision_staff")
    if not expert.is_available:
        out.append("unavailable")
    if not set(expert.specialties) & set(wanted):
        out.append("no_specialty")
    if parties.frequency_cap is not None and expert.draws_for_tenderer >= parties.frequency_cap:
        out.append("frequency_cap")
    return out


def is_local(region: str | None, host_region: str | None) -> bool:
    """True when ``region`` lies in ``host_region`` (a province ``370000`` holds ``370202``; a city its districts)."""
    if not region or not host_region:
        return False
    prefix = host_region
    while prefix.endswith("00") and len(prefix) > 2:
        prefix = prefix[:-2]
    return region.startswith(prefix)


def freeze_candidates(experts: Iterable[ExpertFacts], parties: Parties, wanted: dict[str, dict[str, int]], *,
                      host_region: str | None = None, local_cap: int | None = None,
                      already_drawn: Iterable[str] = ()) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The frozen candidate list of a round and the excluded experts with their reasons.

    Experts whose only reason is holding none of the wanted specialties are counted, not listed.
    """
    drawn = set(already_drawn)
    lists: dict[str, list[str]] = {code: [] for code in wanted}
    local: set[str] = set()
    excluded: list[dict[str, Any]] = []
    unrelated = 0
    for expert in experts:
        reasons = exclusion_reasons(expert, parties, wanted)
        if expert.code in drawn:
            reasons.append("already_drawn")
        if reasons == ["no_specialty"]:
            unrelated += 1
            continue
        if reasons:
            excluded.append({"code": expert.code, "reasons": reasons})
            continue
        for code in wanted:
            if code in expert.specialties:
                lists[code].append(expert.code)
        if is_local(expert.region, host_region):
            local.add(expert.code)
    candidates = {"specialties": {code: sorted(codes) for code, codes in sorted(lists.items())},
                  "local": sorted(local), "local_cap": local_cap, "host_region": host_region,
                  "not_matching": unrelated}
    return candidates, sorted(excluded, key=lambda e: e["code"])


# --- hashing and the draw ------------------------------------------------------------------------------

def canonical(value: Any) -> bytes:
    """Canonical JSON (sorted keys, no spaces, ASCII) of ``value``: what the hashes are taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wanted_text(wanted: dict[str, dict[str, int]]) -> str:
    """The short form logged in the commit entry: ``A010101:3+2;B020202:2+2`` (count + alternates)."""
    return ";".join(f"{code}:{w['count']}+{w['alternates']}" for code, w in sorted(wanted.items()))


def round_key(seed: bytes, tender_code: str, round_number: int, beacon: str | None) -> bytes:
    message = f"{DRAW_LABEL}\n{tender_code}\n{round_number}\n{beacon or '-'}".encode()
    return hmac.new(seed, message, hashlib.sha256).digest()


def _words(key: bytes, specialty: str) -> Iterator[int]:
    counter = 0
    while True:
        block = hmac.new(key, specialty.encode() + b"\n" + counter.to_bytes(8, "big"), hashlib.sha256).digest()
        for i in range(0, 32, 8):
            yield int.from_bytes(block[i:i + 8], "big")
        counter += 1


def uniform_below(words: Iterator[int], n: int) -> int:
    """A uniform integer in [0, n) from 64-bit words, by rejection sampling (no modulo bias)."""
    limit = (1 << 64) - (1 << 64) % n
    while True:
        value = next(words)
        if value < limit:
            return value % n


def draw_order(key: bytes, specialty: str, codes: list[str]) -> list[str]:
    """The specialty's candidates in drawn order (Fisher-Yates over the sorted codes)."""
    order = sorted(codes)
    words = _words(key, specialty)
    for i in range(len(order) - 1, 0, -1):
        j = uniform_below(words, i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def draw_committee(seed: bytes, beacon: str | None, tender_code: str, round_number: int,
                   candidates: dict[str, Any], wanted: dict[str, dict[str, int]]) -> dict[str, Any]:
    """``{specialty: {"members": [...], "alternates": [...]}}``: the round's result (see the module text)."""
    key = round_key(seed, tender_code, round_number, beacon)
    local = set(candidates.get("local") or [])
    cap = candidates.get("local_cap")
    taken: set[str] = set()
    local_used = 0
    result: dict[str, Any] = {}
    for code in sorted(wanted):
        need, spare = wanted[code]["count"], wanted[code]["alternates"]
        members: list[str] = []
        alternates: list[str] = []
        for expert in draw_order(key, code, candidates["specialties"].get(code, [])):
            if len(members) >= need and len(alternates) >= spare:
                break
            if expert in taken or (expert in local and cap is not None and local_used >= cap):
                continue
            (members if len(members) < need else alternates).append(expert)
            taken.add(expert)
            local_used += expert in local
        result[code] = {"members": members, "alternates": alternates}
    return result


def shortfall(result: dict[str, Any], wanted: dict[str, dict[str, int]]) -> dict[str, int]:
    """Seats a round could not fill, per specialty."""
    return {code: w["count"] - len(result.get(code, {}).get("members", []))
            for code, w in wanted.items() if len(result.get(code, {}).get("members", [])) < w["count"]}


@dataclass
class RoundCheck:
    """The verdict on one round: recomputed from its seed, beacon and frozen list against its log entries."""

    number: int
    problems: list[Any] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_round(tender_code: str, rnd: dict[str, Any], commit: dict[str, Any] | None,
                reveal: dict[str, Any] | None) -> RoundCheck:
    """Recompute a round from its stored seed, beacon and frozen list; compare with its two log entries.

    ``rnd`` holds the round as stored or exported; ``commit`` and ``reveal`` are the logged entries (parsed),
    or None when the log has no such entry.
    """
    check = RoundCheck(rnd.get("number") if isinstance(rnd, dict) else None)
    problem = check.problems.append
    try:
        number = rnd["number"]
        if sha256_hex(canonical(rnd["candidates"])) != rnd["candidates_sha256"]:
            problem(_l("The frozen candidate list does not hash to the recorded SHA-256."))
        seed = bytes.fromhex(rnd["seed"] or "")
        if len(seed) != 32:
            problem(_l("No 32-byte seed was revealed for this round."))
        if sha256_hex(seed) != rnd["seed_commitment"]:
            problem(_l("SHA-256 of the revealed seed is not the committed value."))
        if commit is None:
            problem(_l("The log holds no commit entry for this round."))
        else:
            expected = {"kind": "draw.commit", "tender": tender_code, "round": number,
                        "commitment": rnd["seed_commitment"], "candidates_sha256": rnd["candidates_sha256"],
                        "wanted": wanted_text(rnd["wanted"])}
            for name, value in expected.items():
                if commit.get(name) != value:
                    problem(_l("The logged commit entry differs in '%(field)s'.", field=name))
        if reveal is None:
            problem(_l("The log holds no reveal entry for this round."))
        else:
            expected = {"kind": "draw.reveal", "tender": tender_code, "round": number,
                        "commitment": rnd["seed_commitment"], "seed": rnd["seed"],
                        "result_sha256": sha256_hex(canonical(rnd["result"])), "beacon": rnd["beacon"]}
            for name, value in expected.items():
                if reveal.get(name) != value:
                    problem(_l("The logged reveal entry differs in '%(field)s'.", field=name))
        ci, ri = rnd["commit_log_index"], rnd["reveal_log_index"]
        if not (isinstance(ci, int) and isinstance(ri, int) and ci < ri):
            problem(_l("The commit entry (index %(commit)s) does not precede the reveal entry (index %(reveal)s).",
                       commit=ci, reveal=ri))
        if len(seed) == 32:
            again = draw_committee(seed, rnd["beacon"], tender_code, number, rnd["candidates"], rnd["wanted"])
            if again != rnd["result"]:
                problem(_l("Recomputed from the seed, the round draws another committee than the one recorded."))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        problem(_l("The round's record is malformed (%(error)s).", error=f"{type(exc).__name__}: {exc}"))
    return check
