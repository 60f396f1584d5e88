"""Evaluation criteria: default sets, given sets, value checks, progress and deviation warnings (pure)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ValidationFailed
from evaluation import criteria as C

SCORE = {"code": "T1", "kind": "score", "title": "Plan", "group": "技术", "min": "0", "max": "12"}
PF = {"code": "Q1", "kind": "pass_fail", "title": "Licence", "group": "资格", "min": None, "max": None}


def _scored_sum(items) -> Decimal:
    return sum((Decimal(c["max"]) for c in items if c["kind"] == "score"), Decimal(0))


@pytest.mark.parametrize("method, scored, total", [
    ({}, 4, Decimal("30")),
    ({"weights": {"technical": 40}}, 4, Decimal("40")),
    ({"weights": {"technical": "33"}}, 4, Decimal("33")),
    ({"weights": {"technical": "12.35"}}, 4, Decimal("12.35")),
    ({"method": "lowest_price", "weights": {"technical": 30}}, 0, Decimal("0")),
    ({"weights": {"technical": 0}}, 0, Decimal("0")),
])
def test_default_set_scores_sum_to_the_technical_weight(method, scored, total):
    items = C.criteria_for(method)
    assert sum(1 for c in items if c["kind"] == "score") == scored
    assert _scored_sum(items) == total
    assert {c["group"] for c in items if c["kind"] == "pass_fail"} == {"形式", "资格", "响应性"}
    assert all(c["group"] == "技术" and c["min"] == "0" for c in items if c["kind"] == "score")
    assert len({c["code"] for c in items}) == len(items)


@given(st.decimals(min_value=Decimal("0.04"), max_value=Decimal("100"), places=2))
def test_default_scored_items_always_sum_exactly(weight):
    assert _scored_sum(C.criteria_for({"weights": {"technical": str(weight)}})) == weight


def test_given_criteria_are_normalised_and_objective_items_left_out():
    items = C.criteria_for({"criteria": [
        {"code": "F1", "kind": "pass_fail", "title": "Seal", "group": "形式"},
        {"code": "B1", "kind": "score", "title": "Service", "group": "商务", "min": 0, "max": 5.5},
        {"code": "P", "kind": "objective", "title": "Price", "group": "商务", "max": 60},
    ]})
    assert items == [
        {"code": "F1", "kind": "pass_fail", "title": "Seal", "group": "形式", "min": None, "max": None},
        {"code": "B1", "kind": "score", "title": "Service", "group": "商务", "min": "0", "max": "5.5"},
    ]


@pytest.mark.parametrize("given_criteria, message", [
    ([{"code": "A", "kind": "vote", "title": "x", "group": "技术"}], "kind"),
    ([{"code": "A", "kind": "score", "title": "x", "group": "价格", "max": 5}], "group"),
    ([{"code": "A", "kind": "score", "title": "x", "group": "技术", "min": 5, "max": 5}], "range"),
    ([{"code": "A", "kind": "score", "title": "x", "group": "技术", "min": -1, "max": 5}], "range"),
    ([{"code": "A", "kind": "score", "title": "x", "group": "技术"}], "range"),
    ([{"code": "", "kind": "score", "title": "x", "group": "技术", "max": 5}], "code"),
    ([{"code": "A", "kind": "pass_fail", "title": "x", "group": "形式"}] * 2, "unique"),
    (["A"], "object"),
    ("A", "list"),
    ([{"code": "P", "kind": "objective", "title": "Price", "group": "商务"}], "no criteria"),
])
def test_bad_given_criteria_are_refused(given_criteria, message):
    with pytest.raises(ValidationFailed) as info:
        C.criteria_for({"criteria": given_criteria})
    assert message in info.value.to_dict()["message"]


@pytest.mark.parametrize("criterion, value, stored", [
    (SCORE, "7.5", "7.5"), (SCORE, "0", "0"), (SCORE, "12", "12"), (SCORE, "12.00", "12"), (SCORE, 8, "8"),
    (SCORE, " 3.25 ", "3.25"), (PF, "pass", "pass"), (PF, "FAIL", "fail"),
])
def test_accepted_values(criterion, value, stored):
    assert C.check_value(criterion, value) == stored


@pytest.mark.parametrize("criterion, value", [
    (SCORE, "12.01"), (SCORE, "-0.5"), (SCORE, "13"), (SCORE, "abc"), (SCORE, "7.125"), (SCORE, "NaN"),
    (SCORE, "Infinity"), (SCORE, True), (SCORE, None), (SCORE, ["1"]), (PF, "yes"), (PF, 1), (PF, "")])
def test_refused_values_name_the_allowed_range(criterion, value):
    with pytest.raises(ValidationFailed) as info:
        C.check_value(criterion, value)
    message = info.value.to_dict()["message"]
    assert (" from 0 to 12" in message) if criterion is SCORE else ("pass or fail" in message)


@pytest.mark.parametrize("values, expected", [
    ({}, (0, 2)), ({"T1": "5"}, (1, 2)), ({"T1": "5", "Q1": "pass"}, (2, 2)), ({"T1": "50", "Q1": "pass"}, (1, 2)),
    ({"X": "1"}, (0, 2)),
])
def test_progress(values, expected):
    assert C.progress([SCORE, PF], values) == expected


@pytest.mark.parametrize("values, comments, missing", [
    ({"Q1": "fail"}, {}, ["Q1"]), ({"Q1": "fail"}, {"Q1": "  "}, ["Q1"]), ({"Q1": "fail"}, {"Q1": "expired"}, []),
    ({"Q1": "pass"}, {}, []),
])
def test_a_fail_needs_a_reason(values, comments, missing):
    assert C.missing_reasons([SCORE, PF], values, comments) == missing


@pytest.mark.parametrize("scores, threshold, flagged", [
    ({1: "6", 2: "6", 3: "6"}, "0.3", []),
    ({1: "6", 2: "6", 3: "10"}, "0.3", [3]),     # |10 - 6| = 4 > 3.6
    ({1: "6", 2: "6", 3: "9.6"}, "0.3", []),     # 3.6 is not above 3.6
    ({1: "0", 2: "12", 3: "6"}, "0.3", [1, 2]),  # 1: |0 - 9| = 9; 2: |12 - 3| = 9; 3: |6 - 6| = 0
    ({1: "6", 2: "10"}, "0.3", [1, 2]),
    ({1: "6"}, "0.3", []),                       # nobody to compare with
    ({1: "6", 2: "6", 3: "10"}, "0.5", []),
])
def test_deviation_warnings(scores, threshold, flagged):
    sheets = {m: {7: {"T1": v, "Q1": "pass"}} for m, v in scores.items()}
    warnings = C.deviation_warnings([SCORE, PF], sheets, threshold)
    assert [w["member_id"] for w in warnings] == flagged
    assert all(w["criterion"] == "T1" and w["bid_opening_id"] == 7 and w["range"] == ["0", "12"] for w in warnings)


def test_warning_carries_the_value_and_the_mean_of_the_others():
    sheets = {1: {7: {"T1": "2"}}, 2: {7: {"T1": "9"}}, 3: {7: {"T1": "10"}}, 4: {8: {"T1": "1"}}}  # 3: |10 - 5.5| > 3.6
    assert C.deviation_warnings([SCORE], sheets, Decimal("0.3")) == [
        {"member_id": 1, "bid_opening_id": 7, "criterion": "T1", "value": "2", "others_mean": "9.5", "range": ["0", "12"]},
        {"member_id": 3, "bid_opening_id": 7, "criterion": "T1", "value": "10", "others_mean": "5.5",
         "range": ["0", "12"]}]


@given(st.dictionaries(st.integers(1, 9), st.decimals(min_value=0, max_value=12, places=2), min_size=1, max_size=9),
       st.sampled_from(["0.1", "0.25", "0.3", "0.5"]))
def test_a_warning_exactly_when_far_from_the_others_mean(scores, threshold):
    sheets = {m: {1: {"T1": str(v)}} for m, v in scores.items()}
    flagged = {w["member_id"] for w in C.deviation_warnings([SCORE], sheets, threshold)}
    for member, value in scores.items():
        others = [v for m, v in scores.items() if m != member]
        far = bool(others) and abs(value - sum(others) / len(others)) > Decimal(threshold) * 12
        assert (member in flagged) == far


@pytest.mark.parametrize("method, expected", [
    ({}, Decimal("0.3")), (None, Decimal("0.3")), ({"deviation_threshold": 0.25}, Decimal("0.25")),
    ({"deviation_threshold": "1"}, Decimal("1")),
])
def test_threshold(method, expected):
    assert C.threshold_for(method) == expected


@pytest.mark.parametrize("raw", [0, "-0.1", "1.5", "x", None, True])
def test_bad_threshold_is_refused(raw):
    with pytest.raises(ValidationFailed, match="deviation threshold"):
        C.threshold_for({"deviation_threshold": raw})
