"""describe(): titles and formulas of every step code, and the worked example of the documentation."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from evaluation.methods import CODES, Step, describe
from tests.evaluation.methods.support import bid, run

DOC = Path(__file__).resolve().parents[3] / "docs" / "evaluation-methods.md"
EXAMPLE = {"method": "comprehensive", "weights": {"price": 60, "technical": 30, "credit": 10},
           "downward_coefficient": "K", "random_parameters": {"K": ["0.0025", "0.0050", "0.0075"]}}


def _example():
    return run(EXAMPLE, [bid(1, "1000000.00", "30"), bid(2, "980000.00", "25"), bid(3, "960000.00", "26.50")],
               drawn={"K": "0.0050"})


def test_worked_example_of_the_documentation():
    outcome = _example()
    doc = DOC.read_text(encoding="utf-8")
    lines = [describe(s)[1] for s in outcome.benchmark_steps]
    lines += [describe(s)[1] for b in outcome.bids for s in b.steps]
    for line in lines:
        assert f"    {line}\n" in doc, line
    # the numbers, by hand: B = 980000 × 0.995 = 975100.00; totals 84.90, 84.00, 84.95
    assert outcome.benchmark == Decimal("975100.00")
    assert [b.total for b in outcome.bids] == [Decimal("84.90"), Decimal("84.00"), Decimal("84.95")]
    assert outcome.ranking == (3, 1, 2)
    assert "Ranking: bid 3 (84.95), bid 1 (84.90), bid 2 (84.00)." in doc


def test_documentation_lists_every_step_code():
    doc = DOC.read_text(encoding="utf-8")
    for code in CODES:
        assert f"`{code}`" in doc, code


@pytest.mark.parametrize(("step", "formula"), [
    (Step("benchmark.trimmed", {"bid:2": "900000", "bid:3": "800000", "n": "2", "dropped:1": "1000000",
                                "dropped:4": "700000"}, "850000"),
     "mean = (900000 + 800000) / 2 = 850000; left out: 1000000, 700000"),
    (Step("benchmark.lowest", {"bid:1": "100", "bid:2": "95"}, "95"), "min(100, 95) = 95"),
    (Step("benchmark.composite", {"mean": "900000", "ceiling": "1000000", "mean_weight": "0.7",
                                  "ceiling_weight": "0.3", "delta": "0.15", "k": "0.97"}, "858450.00"),
     "B = (0.7 × 900000 + 0.3 × 1000000 × (1 - 0.15)) × 0.97 = 858450.00"),
    (Step("score.band", {"from": "-3", "to": "0", "rate": "1", "action": "add", "span": "2"}, "2"),
     "+ 1 × 2 (D in [-3, 0] %) = + 2"),
    (Step("score.band", {"from": "", "to": "-3", "rate": "1", "action": "deduct", "span": "2"}, "2"),
     "- 1 × 2 (D in [-∞, -3] %) = - 2"),
    (Step("gp.score", {"benchmark": "94500.00", "price": "100000", "full": "30"}, "28.35"),
     "S = 94500.00 / 100000 × 30 = 28.35"),
    (Step("score.floor", {"score": "-25.71"}, "0"), "S = max(0, -25.71) = 0"),
])
def test_formulas(step, formula):
    assert describe(step)[1] == formula


def test_every_code_produced_is_described():
    outcomes = [
        _example(),
        run({"benchmark": "composite", "composite": {"delta": "0.15", "k": "0.97", "floor_factor": "0.75"},
             "deviation": {"interpolate": False, "base": "58", "bands": [
                 {"from": "-10", "to": "0", "rate": "2", "action": "add"}]}},
            [bid(1, "950000"), bid(2, "900000"), bid(3, "850000"), bid(4, "600000"), bid(5, "1400000")],
            ceiling="1400000"),
        run({"benchmark": "trimmed_mean", "deviation": {"above": "5"}},
            [bid(1, "100"), bid(2, "200"), bid(3, "300"), bid(4, "1000")]),
        run({"benchmark": "lowest"}, [bid(1, "100"), bid(2, "110")]),
        run({"method": "gp_low_price"}, [bid(1, "100", is_sme=True), bid(2, "40")]),
        run({"method": "lowest_price"}, [bid(1, "100", adjustments="5"), bid(2, "50")]),
    ]
    seen = set()
    for outcome in outcomes:
        for step in [*outcome.benchmark_steps, *(s for b in outcome.bids for s in b.steps)]:
            title, formula = describe(step)
            assert title and step.result in formula
            seen.add(step.code)
    assert seen == set(CODES)


@pytest.mark.parametrize(("value", "expected"), [
    ("12062293.3333333333333333333333333", "12062293.333333…"),
    ("12001981.87", "12001981.87"),
    ("-0.123456789", "-0.123456…"),
    ("0.1234567", "0.123456…"),
    ("0.123456", "0.123456"),
    ("100", "100"),
    ("", ""),
    ("n/a", "n/a"),
])
def test_long_intermediate_values_are_shown_cut_and_marked(value, expected):
    from evaluation.methods.explain import shown
    assert shown(value) == expected
