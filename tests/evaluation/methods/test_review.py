"""Pass/fail review by majority with committee decisions, and the aggregation of expert scores."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.errors import ValidationFailed
from evaluation.methods import Rounding, aggregate_bid, aggregate_item, parse_method, review

P, F = "pass", "fail"


def ballots(*rows: dict[str, str]) -> dict[int, dict[str, str]]:
    """Member ids 1, 2, ... in order."""
    return {member: row for member, row in enumerate(rows, start=1)}


REVIEW_CASES = [
    # all 5 pass
    ("all pass", ["F1"], {10: ballots(*[{"F1": P}] * 5)}, {}, {10: (True, (), {"F1": (5, 0)})}),
    # 3 fails of 5 > half: fails
    ("majority fails", ["F1"], {10: ballots(*[{"F1": F}] * 3, *[{"F1": P}] * 2)}, {},
     {10: (False, ("F1",), {"F1": (2, 3)})}),
    # 2 fails of 4 is not more than half: passes
    ("half is not a majority", ["F1"], {10: ballots(*[{"F1": F}] * 2, *[{"F1": P}] * 2)}, {},
     {10: (True, (), {"F1": (2, 2)})}),
    # the committee's decision overrides a failing majority
    ("decision overrides fail", ["F1"], {10: ballots(*[{"F1": F}] * 3, *[{"F1": P}] * 2)}, {(10, "F1"): P},
     {10: (True, (), {"F1": (2, 3)})}),
    ("decision overrides pass", ["F1"], {10: ballots(*[{"F1": P}] * 5)}, {(10, "F1"): F},
     {10: (False, ("F1",), {"F1": (5, 0)})}),
    # several items, failed items in the order of codes
    ("several items", ["F1", "Q1", "R1"], {10: ballots({"F1": P, "Q1": F, "R1": F}, {"F1": P, "Q1": F, "R1": F},
                                                       {"F1": P, "Q1": P, "R1": F})}, {},
     {10: (False, ("Q1", "R1"), {"F1": (3, 0), "Q1": (1, 2), "R1": (0, 3)})}),
    # two bids reviewed independently
    ("two bids", ["F1"], {10: ballots({"F1": P}, {"F1": P}, {"F1": F}), 11: ballots({"F1": F}, {"F1": F}, {"F1": P})},
     {}, {10: (True, (), {"F1": (2, 1)}), 11: (False, ("F1",), {"F1": (1, 2)})}),
    # an item without votes decided by the committee
    ("decided without votes", ["F1", "Q1"], {10: ballots({"F1": P}, {"F1": P}, {"F1": P})}, {(10, "Q1"): F},
     {10: (False, ("Q1",), {"F1": (3, 0), "Q1": (0, 0)})}),
    # a member voting on some items only: tallies count the votes cast
    ("partial ballots", ["F1", "Q1"], {10: ballots({"F1": P, "Q1": F}, {"F1": P}, {"F1": P, "Q1": P})}, {},
     {10: (True, (), {"F1": (3, 0), "Q1": (1, 1)})}),
    # votes on codes outside the list are ignored
    ("extra codes ignored", ["F1"], {10: ballots({"F1": P, "X9": F}, {"F1": P, "X9": F})}, {},
     {10: (True, (), {"F1": (2, 0)})}),
    # a bid only in the decisions
    ("bid only decided", ["F1"], {}, {(12, "F1"): P}, {12: (True, (), {"F1": (0, 0)})}),
    # one fail of one vote
    ("single vote", ["F1"], {10: ballots({"F1": F})}, {}, {10: (False, ("F1",), {"F1": (0, 1)})}),
]


@pytest.mark.parametrize(("codes", "votes", "decided", "expected"), [c[1:] for c in REVIEW_CASES],
                         ids=[c[0] for c in REVIEW_CASES])
def test_review_table(codes, votes, decided, expected):
    outcomes = review(codes, votes, decided)
    assert set(outcomes) == set(expected)
    for bid_id, (passed, failed, tallies) in expected.items():
        got = outcomes[bid_id]
        assert (got.passed, got.failed_items, dict(got.tallies)) == (passed, failed, tallies)


@pytest.mark.parametrize(("codes", "votes", "decided"), [
    (["F1"], {10: ballots({"F1": "maybe"})}, {}),
    (["F1"], {10: ballots({"F1": P})}, {(10, "F1"): "yes"}),
    (["F1", "Q1"], {10: ballots({"F1": P})}, {}),  # Q1 has no vote and no decision
], ids=["bad vote", "bad decision", "missing vote"])
def test_review_refuses(codes, votes, decided):
    with pytest.raises(ValidationFailed):
        review(codes, votes, decided)


HALF_UP = Rounding(2, "half_up")
AGGREGATE_CASES = [
    # 5 experts, drop at 5: drop 10 (member 5) and 6 (member 4); (8 + 7 + 9) / 3 = 8.00
    ("drop extremes", {1: "8", 2: "7", 3: "9", 4: "6", 5: "10"}, 5, HALF_UP, "8.00", 5, 4, (1, 2, 3)),
    # 4 experts below the threshold 5: plain mean (8 + 7 + 9 + 6) / 4 = 7.50
    ("below threshold", {1: "8", 2: "7", 3: "9", 4: "6"}, 5, HALF_UP, "7.50", None, None, (1, 2, 3, 4)),
    # no dropping (GP): (1 + 2 + 3 + 4 + 5 + 6 + 100) / 7 = 121 / 7 = 17.2857 -> 17.29
    ("plain mean", {i: str(v) for i, v in enumerate([1, 2, 3, 4, 5, 6, 100], 1)}, None, HALF_UP, "17.29",
     None, None, (1, 2, 3, 4, 5, 6, 7)),
    # equal extremes: low = (5, member 3), high = (9, member 2); (9 + 5 + 7) / 3 = 7.00
    ("equal extremes", {1: "9", 2: "9", 3: "5", 4: "5", 5: "7"}, 5, HALF_UP, "7.00", 2, 3, (1, 4, 5)),
    # (7 + 8 + 8) / 3 = 7.6667 -> 7.67 half up
    ("half up", {1: "7", 2: "8", 3: "8"}, 5, HALF_UP, "7.67", None, None, (1, 2, 3)),
    # the same rounded down: 7.66
    ("down", {1: "7", 2: "8", 3: "8"}, 5, Rounding(2, "down"), "7.66", None, None, (1, 2, 3)),
    # drop at 3 with 3 experts: only the middle one is left: 8
    ("drop at 3", {1: "7", 2: "8", 3: "9.5"}, 3, HALF_UP, "8.00", 3, 1, (2,)),
    # one expert
    ("one expert", {4: "12.5"}, 5, HALF_UP, "12.50", None, None, (4,)),
    # 7 experts drop at 5: drop 0 and 10; (2 + 4 + 6 + 8 + 9) / 5 = 29 / 5 = 5.80
    ("seven experts", {1: "0", 2: "2", 3: "4", 4: "6", 5: "8", 6: "9", 7: "10"}, 5, HALF_UP, "5.80", 7, 1,
     (2, 3, 4, 5, 6)),
    # places 1: (1 + 2) / 2 = 1.5; half even with places 0 -> 2
    ("half even", {1: "1", 2: "2"}, None, Rounding(0, "half_even"), "2", None, None, (1, 2)),
]


@pytest.mark.parametrize(("scores", "drop_at", "rounding", "value", "high", "low", "used"),
                         [c[1:] for c in AGGREGATE_CASES], ids=[c[0] for c in AGGREGATE_CASES])
def test_aggregate_item_table(scores, drop_at, rounding, value, high, low, used):
    result = aggregate_item({m: Decimal(v) for m, v in scores.items()}, drop_at, rounding)
    assert result.value == Decimal(value) and str(result.value) == value
    assert (result.dropped_high, result.dropped_low, result.used) == (high, low, used)


def test_aggregate_bid_sums_the_rounded_item_averages():
    # T1: 10, 11, 12, 13, 20 -> drop 20 and 10 -> (11 + 12 + 13) / 3 = 12.00
    # T2: 3.33, 3.34, 3.33 (3 experts, no drop) -> 10 / 3 = 3.333 -> 3.33; total 15.33
    items = {"T1": {1: Decimal(10), 2: Decimal(11), 3: Decimal(12), 4: Decimal(13), 5: Decimal(20)},
             "T2": {1: Decimal("3.33"), 2: Decimal("3.34"), 3: Decimal("3.33")}}
    total, parts = aggregate_bid(items, parse_method({}))
    assert total == Decimal("15.33")
    assert parts["T1"].value == Decimal("12.00") and parts["T1"].dropped_high == 5
    assert parts["T2"].value == Decimal("3.33")


def test_aggregate_bid_gp_uses_the_plain_mean():
    # GP default: no dropping; (10 + 11 + 12 + 13 + 20) / 5 = 13.20
    items = {"T1": {1: Decimal(10), 2: Decimal(11), 3: Decimal(12), 4: Decimal(13), 5: Decimal(20)}}
    total, parts = aggregate_bid(items, parse_method({"method": "gp_low_price"}))
    assert total == Decimal("13.20") and parts["T1"].dropped_high is None


@pytest.mark.parametrize("scores", [{}, {1: Decimal("-1")}, {1: "7"}], ids=["empty", "negative", "not decimal"])
def test_aggregate_item_refuses(scores):
    with pytest.raises(ValidationFailed):
        aggregate_item(scores, 5, HALF_UP, "T1")
