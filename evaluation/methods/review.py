"""Pass/fail review (初步评审: 形式/资格/响应性) and the aggregation of expert scores (DOMAIN §2.5).

Pure functions over the committee's votes and scores; nothing is stored here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext

from flask_babel import lazy_gettext as _l

from core.errors import ValidationFailed
from evaluation.methods.numbers import CONTEXT, ZERO, Rounding, mean
from evaluation.methods.spec import MethodSpec

PASS, FAIL = "pass", "fail"
M_VOTE = _l("The vote of member %(member)s on %(item)s of bid %(bid)s is %(value)s; use pass or fail.")
M_DECISION = _l("The committee decision on %(item)s of bid %(bid)s is %(value)s; use pass or fail.")
M_NO_VOTE = _l("Item %(item)s of bid %(bid)s has no vote and no committee decision; collect the votes first.")
M_NO_SCORES = _l("Item %(item)s has no scores; collect the experts' scores first.")
M_SCORE = _l("The score of member %(member)s on %(item)s is %(value)s; scores are numbers of at least 0.")


@dataclass(frozen=True)
class ReviewOutcome:
    """The pass/fail review of one bid: passed, the failed items, and ``{code: (passes, fails)}``."""

    passed: bool
    failed_items: tuple[str, ...]
    tallies: Mapping[str, tuple[int, int]]


@dataclass(frozen=True)
class Aggregate:
    """The committee's value of one subjective item for one bid, and which members' scores it used."""

    value: Decimal
    dropped_high: int | None
    dropped_low: int | None
    used: tuple[int, ...]


def review(codes: Sequence[str], votes: Mapping[int, Mapping[int, Mapping[str, str]]],
           decided: Mapping[tuple[int, str], str]) -> dict[int, ReviewOutcome]:
    """Each bid's pass/fail review: an item fails a bid when more than half of the votes on it are "fail"
    (少数服从多数); a committee decision ``decided[(bid_id, code)]`` on a disputed item overrides the votes.

    ``votes`` is ``{bid_id: {member_id: {code: "pass" | "fail"}}}``; votes on codes not in ``codes`` are
    ignored. Every item of every bid needs a vote or a decision.
    """
    bids = sorted(set(votes) | {bid for bid, _ in decided})
    outcomes = {}
    for bid in bids:
        tallies: dict[str, tuple[int, int]] = {}
        failed = []
        for code in codes:
            passes = fails = 0
            for member, ballot in sorted((votes.get(bid) or {}).items()):
                if code not in ballot:
                    continue
                value = ballot[code]
                if value not in (PASS, FAIL):
                    raise ValidationFailed(M_VOTE, member=member, item=code, bid=bid, value=str(value)[:20])
                passes, fails = (passes + 1, fails) if value == PASS else (passes, fails + 1)
            tallies[code] = (passes, fails)
            verdict = decided.get((bid, code))
            if verdict is not None and verdict not in (PASS, FAIL):
                raise ValidationFailed(M_DECISION, item=code, bid=bid, value=str(verdict)[:20])
            if verdict is None and passes + fails == 0:
                raise ValidationFailed(M_NO_VOTE, item=code, bid=bid)
            if verdict == FAIL or (verdict is None and 2 * fails > passes + fails):
                failed.append(code)
        outcomes[bid] = ReviewOutcome(not failed, tuple(failed), tallies)
    return outcomes


def aggregate_item(scores: Mapping[int, Decimal], drop_extremes_at: int | None, rounding: Rounding,
                   item: str = "") -> Aggregate:
    """The mean of the members' scores on one item, rounded; when at least ``drop_extremes_at`` members
    scored, one highest and one lowest score are left out first (among equal scores: the highest member
    id is dropped as high, the lowest member id as low, so the choice never depends on input order)."""
    if not scores:
        raise ValidationFailed(M_NO_SCORES, item=item or "?")
    for member, value in scores.items():
        if not isinstance(value, Decimal) or not value.is_finite() or value < ZERO:
            raise ValidationFailed(M_SCORE, member=member, item=item or "?", value=str(value)[:20])
    ordered = sorted(scores, key=lambda member: (scores[member], member))
    high = low = None
    if drop_extremes_at is not None and len(ordered) >= drop_extremes_at:
        low, high = ordered[0], ordered[-1]
        ordered = ordered[1:-1]
    with localcontext(CONTEXT):
        value = rounding(mean(scores[member] for member in ordered))
    return Aggregate(value, high, low, tuple(sorted(ordered)))


def aggregate_bid(items: Mapping[str, Mapping[int, Decimal]], spec: MethodSpec) -> tuple[Decimal, dict[str, Aggregate]]:
    """A bid's subjective points: the sum of its rounded item averages (``{code: {member_id: score}}``)."""
    aggregates = {code: aggregate_item(scores, spec.drop_extremes_at, spec.rounding, code)
                  for code, scores in sorted(items.items())}
    return sum((a.value for a in aggregates.values()), ZERO), aggregates
