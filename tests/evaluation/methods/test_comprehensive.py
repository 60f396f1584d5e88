"""综合评估法 (comprehensive): benchmark strategies, deviation D, linear price score, ties (DOMAIN §2.2–2.3).

Every expected number is computed by hand in the comment beside the case (F = 60, E1 = 2, E2 = 1, 2 dp
HALF_UP unless stated).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.errors import ValidationFailed
from evaluation.methods import BidInput, LotInput, Rounding, evaluate, parse_method
from tests.evaluation.methods.support import bid, check, run

K_LIST = {"K": ["0.0025", "0.005", "0.0075"]}

CASES = [
    # mean: B = (1000000 + 980000 + 960000) / 3 = 980000.00
    # D1 = 20000 / 980000 × 100 = 2.0408 -> 2.04, S = 60 − 2 × 2.04 = 55.92
    # D2 = 0 -> S = 60 (price exactly at the benchmark: full score); D3 = −2.04 -> S = 60 − 2.04 = 57.96
    ("mean", {}, None, {}, [bid(1, "1000000.00"), bid(2, "980000.00"), bid(3, "960000.00")], "980000.00",
     {1: {"deviation": "2.04", "price_score": "55.92", "rank": 3, "in_benchmark": True},
      2: {"deviation": "0.00", "price_score": "60.00", "rank": 1},
      3: {"deviation": "-2.04", "price_score": "57.96", "rank": 2}}),
    # trimmed mean, n = 4 > 3: drop 1000000 and 700000; B = (900000 + 800000) / 2 = 850000.00
    # D = 150000/850000 = 17.65 -> 60 − 35.30 = 24.70; 5.88 -> 60 − 11.76 = 48.24;
    # −5.88 -> 60 − 5.88 = 54.12; −17.65 -> 60 − 17.65 = 42.35
    ("trimmed n=4", {"benchmark": "trimmed_mean"}, None, {},
     [bid(1, "1000000"), bid(2, "900000"), bid(3, "800000"), bid(4, "700000")], "850000.00",
     {1: {"deviation": "17.65", "price_score": "24.70", "rank": 4, "in_benchmark": False},
      2: {"deviation": "5.88", "price_score": "48.24", "rank": 2, "in_benchmark": True},
      3: {"deviation": "-5.88", "price_score": "54.12", "rank": 1, "in_benchmark": True},
      4: {"deviation": "-17.65", "price_score": "42.35", "rank": 3, "in_benchmark": False}}),
    # trimmed mean, n = 3 <= 3: plain mean 980000.00, nothing dropped
    ("trimmed n=3", {"benchmark": "trimmed_mean"}, None, {},
     [bid(1, "1000000.00"), bid(2, "980000.00"), bid(3, "960000.00")], "980000.00",
     {1: {"price_score": "55.92", "in_benchmark": True}, 3: {"price_score": "57.96", "in_benchmark": True}}),
    # downward K = 0.005: B = 980000 × 0.995 = 975100.00 (the worked example of docs/evaluation-methods.md)
    # D1 = 24900 / 975100 = 2.5536 -> 2.55, S = 60 − 5.10 = 54.90, total 54.90 + 30 = 84.90
    # D2 = 4900 / 975100 = 0.5025 -> 0.50, S = 59.00, total 84.00
    # D3 = −15100 / 975100 = −1.5486 -> −1.55, S = 58.45, total 58.45 + 26.50 = 84.95
    ("downward K", {"downward_coefficient": "K", "random_parameters": K_LIST}, None, {"K": "0.005"},
     [bid(1, "1000000.00", "30"), bid(2, "980000.00", "25"), bid(3, "960000.00", "26.50")], "975100.00",
     {1: {"deviation": "2.55", "price_score": "54.90", "total": "84.90", "rank": 2},
      2: {"deviation": "0.50", "price_score": "59.00", "total": "84.00", "rank": 3},
      3: {"deviation": "-1.55", "price_score": "58.45", "total": "84.95", "rank": 1}}),
    # composite, L = 1000000, w1 0.7, w2 0.3, Δ = 0.15, K = 0.97, floor 0.75
    # mean(V) = 3300000 / 4 = 825000; floor = 0.75 × (0.7 × 825000 + 0.3 × 1000000) = 658125 -> 600000 out of V'
    # mean(V') = 900000; B = (630000 + 0.3 × 1000000 × 0.85) × 0.97 = 885000 × 0.97 = 858450.00
    # D = 91550/858450 = 10.66 -> 38.68; 4.84 -> 50.32; −0.98 -> 59.02; −30.11 -> 29.89
    # 600000 < 858450 × 0.85 = 729682.5: abnormally low (a flag only)
    ("composite", {"benchmark": "composite", "random_parameters": {"D": ["0.12", "0.15"], "Q": ["0.95", "0.97"]},
                   "composite": {"delta": "D", "k": "Q", "floor_factor": "0.75"}},
     "1000000", {"D": "0.15", "Q": "0.97"},
     [bid(1, "950000"), bid(2, "900000"), bid(3, "850000"), bid(4, "600000")], "858450.00",
     {1: {"deviation": "10.66", "price_score": "38.68", "in_benchmark": True, "abnormally_low": False},
      2: {"deviation": "4.84", "price_score": "50.32"},
      3: {"deviation": "-0.98", "price_score": "59.02", "rank": 1},
      4: {"deviation": "-30.11", "price_score": "29.89", "in_benchmark": False, "abnormally_low": True,
          "valid": True}}),
    # lowest: B = 950000; D1 = 50000/950000 = 5.26 -> 60 − 10.52 = 49.48; D2 = 0 -> 60
    ("lowest", {"benchmark": "lowest"}, None, {}, [bid(1, "1000000"), bid(2, "950000")], "950000.00",
     {1: {"deviation": "5.26", "price_score": "49.48", "rank": 2}, 2: {"price_score": "60.00", "rank": 1}}),
    # interpolation inside 1 %: B = 1000000 (lowest), D = 3700/1000000 = 0.37 -> S = 60 − 2 × 0.37 = 59.26
    ("interpolate 0.37", {"benchmark": "lowest"}, None, {}, [bid(1, "1000000"), bid(2, "1003700")], "1000000.00",
     {2: {"deviation": "0.37", "price_score": "59.26"}, 1: {"price_score": "60.00"}}),
    # mean = 5000000 / 5 = 1000000; D = 0, 0.37, −0.37, 2.5, −2.5 with interpolation:
    # 60, 60 − 0.74 = 59.26, 60 − 0.37 = 59.63, 60 − 5 = 55, 60 − 2.5 = 57.5
    ("interpolated", {}, None, {},
     [bid(1, "1000000"), bid(2, "1003700"), bid(3, "996300"), bid(4, "1025000"), bid(5, "975000")], "1000000.00",
     {1: {"price_score": "60"}, 2: {"price_score": "59.26"}, 3: {"price_score": "59.63"},
      4: {"price_score": "55"}, 5: {"price_score": "57.5"}}),
    # the same with whole percents only: |D| truncated: 0, 0, 0, 2, −2 -> 60, 60, 60, 60 − 4 = 56, 60 − 2 = 58
    # ties on total 60 broken by the lower price: 996300 (1), 1000000 (2), 1003700 (3)
    ("whole percents", {"deviation": {"interpolate": False}}, None, {},
     [bid(1, "1000000"), bid(2, "1003700"), bid(3, "996300"), bid(4, "1025000"), bid(5, "975000")], "1000000.00",
     {1: {"price_score": "60", "rank": 2}, 2: {"price_score": "60", "rank": 3, "deviation": "0.37"},
      3: {"price_score": "60", "rank": 1, "tie": False}, 4: {"price_score": "56", "rank": 5},
      5: {"price_score": "58", "rank": 4}}),
    # floor at zero, E1 = 3: B = 2800000 / 2 = 1400000; D = ±400000/1400000 = ±28.57
    # S = 60 − 3 × 28.57 = −25.71 -> 0; S = 60 − 28.57 = 31.43
    ("floor at zero", {"deviation": {"above": "3"}}, None, {}, [bid(1, "1000000"), bid(2, "1800000")], "1400000.00",
     {2: {"deviation": "28.57", "price_score": "0", "rank": 2}, 1: {"price_score": "31.43", "rank": 1}}),
    # equal prices and equal subjective points: D = 0, S = 60 for all, tie at rank 1
    ("all equal", {}, None, {}, [bid(1, "500000", "20"), bid(2, "500000", "20"), bid(3, "500000", "20")], "500000.00",
     {1: {"total": "80", "rank": 1, "tie": True}, 2: {"rank": 1, "tie": True}, 3: {"rank": 1, "tie": True}}),
    # tie on total broken by the lower price: B = 1000000; D = −1 -> 59, +1 -> 58; totals 59 + 20 = 58 + 21 = 79
    ("tie lower price", {}, None, {}, [bid(1, "1010000", "21"), bid(2, "990000", "20")], "1000000.00",
     {1: {"total": "79", "rank": 2, "tie": False}, 2: {"total": "79", "rank": 1, "tie": False}}),
    # one bid left: 1 failed review, 2 rejected by the committee, 3 above the ceiling 1000000;
    # B = 950000 from bid 4 alone, D = 0, S = 60
    ("one bid left", {}, "1000000", {},
     [bid(1, "990000", passed_review=False), bid(2, "900000", rejected=True), bid(3, "1000000.01"),
      bid(4, "950000", "10")], "950000.00",
     {1: {"valid": False, "invalid_reason": "failed_review", "rank": None, "price_score": None},
      2: {"valid": False, "invalid_reason": "rejected"}, 3: {"valid": False, "invalid_reason": "above_ceiling"},
      4: {"price_score": "60", "total": "70", "rank": 1, "tie": False}}),
    # tiered bands: base 55 at D = 0, band [−3, 0] adds 1 per %, outside the bands E1 = 2 / E2 = 1 deduct
    # B = 5000000 / 5 = 1000000; D = −2: 55 + 2 = 57; D = −5: 55 + 3 − 1 × 2 = 56; D = 1.5: 55 − 3 = 52;
    # D = 0: 55; D = 5.5: 55 − 11 = 44
    ("bands", {"deviation": {"base": "55", "bands": [{"from": "-3", "to": "0", "rate": "1", "action": "add"}]}},
     None, {}, [bid(1, "980000"), bid(2, "950000"), bid(3, "1015000"), bid(4, "1000000"), bid(5, "1055000")],
     "1000000.00",
     {1: {"price_score": "57", "rank": 1}, 2: {"price_score": "56"}, 3: {"price_score": "52"},
      4: {"price_score": "55"}, 5: {"price_score": "44", "rank": 5}}),
    # bands with a cap: base 58, band [−10, 0] adds 2 per %, band [0, 1] deducts 5 per %, E1 = 2 beyond
    # B = 1000000; D = −2: 58 + 4 = 62 -> capped at 60; D = +2: 58 − 5 × 1 − 2 × 1 = 51
    ("bands capped", {"deviation": {"base": "58", "bands": [
        {"from": "-10", "to": "0", "rate": "2", "action": "add"},
        {"from": "0", "to": "1", "rate": "5", "action": "deduct"}]}},
     None, {}, [bid(1, "980000"), bid(2, "1020000")], "1000000.00",
     {1: {"price_score": "60"}, 2: {"price_score": "51"}}),
    # price weight 40, E1 = 1, E2 = 0.5: B = 1000000; D = +10 -> 40 − 10 = 30; D = −10 -> 40 − 5 = 35
    ("weight 40", {"weights": {"price": 40, "technical": 50, "commercial": 10},
                   "deviation": {"above": "1", "below": "0.5"}}, None, {},
     [bid(1, "1100000"), bid(2, "900000")], "1000000.00",
     {1: {"price_score": "30"}, 2: {"price_score": "35"}}),
]


@pytest.mark.parametrize(("raw", "ceiling", "drawn", "bids", "benchmark", "expected"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_comprehensive_table(raw, ceiling, drawn, bids, benchmark, expected):
    outcome = run({"method": "comprehensive", **raw}, bids, ceiling, drawn)
    assert outcome.benchmark == Decimal(benchmark)
    check(outcome, expected)
    valid = [b for b in outcome.bids if b.valid]
    assert outcome.valid_count == len(valid)
    assert sorted(outcome.ranking) == sorted(b.bid_id for b in valid)
    assert [b.bid_id for b in outcome.bids] == [b.bid_id for b in bids]  # input order kept


def test_zero_valid_bids_have_no_benchmark_and_no_ranks():
    outcome = run({"downward_coefficient": "K", "random_parameters": K_LIST},
                  [bid(1, "100", passed_review=False), bid(2, "200", rejected=True)], drawn={"K": "0.005"})
    assert outcome.benchmark is None and outcome.ranking == () and outcome.valid_count == 0
    assert outcome.benchmark_steps == ()
    assert all(b.rank is None and not b.valid and b.steps == () for b in outcome.bids)


def test_no_bids_at_all():
    outcome = run({}, [])
    assert outcome.bids == () and outcome.benchmark is None


def test_steps_explain_the_price_score():
    outcome = run({"downward_coefficient": "K", "random_parameters": K_LIST},
                  [bid(1, "1000000.00", "30"), bid(2, "980000.00", "25"), bid(3, "960000.00", "26.50")],
                  drawn={"K": "0.005"})
    assert [s.code for s in outcome.benchmark_steps] == ["benchmark.mean", "benchmark.downward", "benchmark"]
    first = outcome.bids[0]
    assert [s.code for s in first.steps] == ["deviation", "score.above", "total"]
    assert first.steps[0].values == {"price": "1000000.00", "benchmark": "975100.00"}
    assert first.steps[0].result == "2.55"
    assert [s.code for s in outcome.bids[2].steps] == ["deviation", "score.below", "total"]


def test_floor_and_whole_percent_steps():
    outcome = run({"deviation": {"above": "3", "interpolate": False}}, [bid(1, "1000000"), bid(2, "1800000")])
    codes = [s.code for s in outcome.bids[1].steps]
    assert codes == ["deviation", "deviation.whole", "score.above", "score.floor", "total"]
    # whole percents: D = 28.57 -> 28; S = 60 − 3 × 28 = −24 -> 0
    assert outcome.bids[1].steps[1].result == "28"
    assert outcome.bids[1].steps[2].result == "-24"


def test_abnormally_low_threshold_can_be_switched_off():
    bids = [bid(1, "950000"), bid(2, "900000"), bid(3, "850000"), bid(4, "600000")]
    assert run({}, bids).bids[3].abnormally_low  # B = 825000, limit 701250
    assert not run({"abnormally_low": None}, bids).bids[3].abnormally_low


def test_missing_drawn_parameter_is_named():
    with pytest.raises(ValidationFailed) as caught:
        run({"downward_coefficient": "K", "random_parameters": K_LIST}, [bid(1, "100")])
    assert caught.value.params["name"] == "K" and "drawn.K" in caught.value.fields


def test_drawn_value_must_be_one_of_the_fixed_values():
    with pytest.raises(ValidationFailed) as caught:
        run({"downward_coefficient": "K", "random_parameters": K_LIST}, [bid(1, "100")], drawn={"K": "0.02"})
    assert caught.value.params["name"] == "K"


def test_composite_needs_the_ceiling_price():
    raw = {"benchmark": "composite", "composite": {"delta": "0.15", "k": "0.97"}}
    with pytest.raises(ValidationFailed):
        run(raw, [bid(1, "100")])
    # literal Δ and K: B = (0.7 × 100 + 0.3 × 200 × 0.85) × 0.97 = 121 × 0.97 = 117.37
    assert run(raw, [bid(1, "100")], ceiling="200").benchmark == Decimal("117.37")


@pytest.mark.parametrize("bids", [
    [bid(1, "100"), bid(1, "200")],
    [BidInput(1, Decimal(0))],
    [BidInput(1, Decimal("-5"))],
    [BidInput(1, Decimal("10"), subjective=Decimal("-1"))],
], ids=["duplicate id", "zero price", "negative price", "negative subjective"])
def test_bad_bids_are_refused(bids):
    with pytest.raises(ValidationFailed):
        evaluate(parse_method({}), LotInput(None, tuple(bids), {}))


def test_rounding_modes():
    assert Rounding(2, "half_up")(Decimal("0.125")) == Decimal("0.13")
    assert Rounding(2, "half_even")(Decimal("0.125")) == Decimal("0.12")
    assert Rounding(2, "down")(Decimal("-1.239")) == Decimal("-1.23")
    assert Rounding(0, "half_up")(Decimal("2.5")) == Decimal("3")


def test_rounding_down_changes_the_deviation():
    # B = 980000; D1 = 2.0408 -> 2.04 either way; D = 1003700/1000000: use 3 places down: 0.370 exact
    # with places 1 and mode down: D1 = 2.0 (2.04 truncated), S = 60 − 4.0 = 56.0
    outcome = run({"rounding": {"places": 1, "mode": "down"}},
                  [bid(1, "1000000.00"), bid(2, "980000.00"), bid(3, "960000.00")])
    assert outcome.bids[0].deviation == Decimal("2.0") and outcome.bids[0].price_score == Decimal("56.0")
