"""政府采购 低价优先法 (gp_low_price), 经评审的最低投标价法 (lowest_price) and 合格制 (pass_fail).

Expected numbers are computed by hand in the comments (GP: S = B / P' × F, F = 30, SME deduction 10 %).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.evaluation.methods.support import bid, check, run

GP_CASES = [
    # B = 100000; S = 30, 100000/120000 × 30 = 25.00, 100000/150000 × 30 = 20.00
    # totals 30 + 40 = 25 + 45 = 20 + 50 = 70: equal totals, lower evaluated price first
    ("plain", {}, None, [bid(1, "100000", "40"), bid(2, "120000", "45"), bid(3, "150000", "50")], "100000",
     {1: {"price_score": "30", "total": "70", "rank": 1, "tie": False}, 2: {"price_score": "25", "rank": 2},
      3: {"price_score": "20", "total": "70", "rank": 3}}),
    # SME 105000 × (1 − 0.10) = 94500 = B; S1 = 94500 / 100000 × 30 = 28.35; S2 = 30
    ("sme deduction", {}, None, [bid(1, "100000"), bid(2, "105000", is_sme=True)], "94500",
     {1: {"price_score": "28.35", "evaluated_price": "100000", "rank": 2},
      2: {"price_score": "30", "evaluated_price": "94500.00", "rank": 1}}),
    # deduction 20 %: 125000 × 0.8 = 100000 = the other price; S = 30 both; totals 80: full tie
    ("sme 20 % tie", {"gp": {"sme_deduction": "0.20"}}, None,
     [bid(1, "125000", "50", is_sme=True), bid(2, "100000", "50")], "100000",
     {1: {"rank": 1, "tie": True, "evaluated_price": "100000"}, 2: {"rank": 1, "tie": True}}),
    # equal evaluated price, totals both round to 80.00: the higher subjective (50.004) wins
    ("subjective tie rule", {}, None, [bid(1, "100000", "50.001"), bid(2, "100000", "50.004")], "100000",
     {1: {"total": "80.00", "rank": 2, "tie": False}, 2: {"total": "80.00", "rank": 1, "tie": False}}),
    # price weight 40: S = 40, 80000 / 100000 × 40 = 32
    ("weight 40", {"weights": {"price": 40}}, None, [bid(1, "80000"), bid(2, "100000")], "80000",
     {1: {"price_score": "40"}, 2: {"price_score": "32"}}),
    # one bid: S = F = 30
    ("one bid", {}, None, [bid(7, "123456.78", "12")], "123456.78",
     {7: {"price_score": "30", "total": "42", "rank": 1}}),
    # S = 300000 / 700000 × 30 = 12.857 -> 12.86
    ("rounding", {}, None, [bid(1, "300000"), bid(2, "700000")], "300000",
     {2: {"price_score": "12.86"}}),
    # ceiling 110000: 1 failed review, 2 above the ceiling, 3 alone: B = 105000, S = 30
    ("invalid bids", {}, "110000", [bid(1, "100000", passed_review=False), bid(2, "120000"), bid(3, "105000")],
     "105000", {1: {"invalid_reason": "failed_review"}, 2: {"invalid_reason": "above_ceiling"},
                3: {"price_score": "30", "rank": 1}}),
    # mean of the valid prices = 260000 / 3 = 86666.67; limit × 0.85 = 73666.67 -> 60000 flagged
    # S(60000) = 30, S(100000) = 60000 / 100000 × 30 = 18
    ("abnormally low", {}, None, [bid(1, "100000"), bid(2, "100000"), bid(3, "60000")], "60000",
     {3: {"abnormally_low": True, "price_score": "30"}, 1: {"abnormally_low": False, "price_score": "18"}}),
    # an SME that is not the lowest: 200000 × 0.9 = 180000; B = 150000; S = 150000/180000 × 30 = 25
    ("sme not lowest", {"weights": {"price": 30}}, None, [bid(1, "150000"), bid(2, "200000", is_sme=True)],
     "150000", {2: {"price_score": "25", "evaluated_price": "180000"}, 1: {"price_score": "30"}}),
]


@pytest.mark.parametrize(("raw", "ceiling", "bids", "benchmark", "expected"), [c[1:] for c in GP_CASES],
                         ids=[c[0] for c in GP_CASES])
def test_gp_low_price_table(raw, ceiling, bids, benchmark, expected):
    outcome = run({"method": "gp_low_price", **raw}, bids, ceiling)
    assert outcome.benchmark == Decimal(benchmark)
    assert all(b.deviation is None for b in outcome.bids)
    check(outcome, expected)


def test_gp_zero_valid_bids():
    outcome = run({"method": "gp_low_price"}, [bid(1, "100", passed_review=False)])
    assert outcome.benchmark is None and outcome.ranking == () and outcome.bids[0].rank is None


def test_gp_steps():
    outcome = run({"method": "gp_low_price"}, [bid(1, "100000"), bid(2, "105000", is_sme=True)])
    assert [s.code for s in outcome.bids[1].steps] == ["gp.sme", "gp.score", "total"]
    assert outcome.bids[1].steps[0].values == {"price": "105000", "deduction": "0.10"}
    assert [s.code for s in outcome.bids[0].steps] == ["gp.score", "total"]


PRICE_CASES = [
    # evaluated 100, 95 + 10 = 105, 90: ranking 3 (90), 1 (100), 2 (105)
    ("lowest_price", "adjustments", None, [bid(1, "100"), bid(2, "95", adjustments="10"), bid(3, "90")],
     (3, 1, 2), {2: {"evaluated_price": "105", "rank": 3}, 3: {"rank": 1}}),
    # negative adjustment: 100 − 6 = 94 < 95
    ("lowest_price", "negative adjustment", None, [bid(1, "100", adjustments="-6"), bid(2, "95")], (1, 2),
     {1: {"evaluated_price": "94", "rank": 1}}),
    # evaluated equal (100 − 5 = 95 = 95): the lower bid price (95) first, no tie
    ("lowest_price", "tie lower price", None, [bid(1, "100", adjustments="-5"), bid(2, "95")], (2, 1),
     {1: {"rank": 2, "tie": False}, 2: {"rank": 1, "tie": False}}),
    # same price, same adjustment: tie at rank 1; the next bid is rank 3
    ("lowest_price", "full tie", None, [bid(1, "100"), bid(2, "100"), bid(3, "120")], (1, 2, 3),
     {1: {"rank": 1, "tie": True}, 2: {"rank": 1, "tie": True}, 3: {"rank": 3, "tie": False}}),
    ("lowest_price", "above ceiling", "110", [bid(1, "120"), bid(2, "110")], (2,),
     {1: {"valid": False, "invalid_reason": "above_ceiling", "evaluated_price": None}, 2: {"rank": 1}}),
    ("lowest_price", "rejected below cost", None, [bid(1, "50", rejected=True), bid(2, "100")], (2,),
     {1: {"invalid_reason": "rejected"}, 2: {"rank": 1}}),
    ("lowest_price", "zero valid", None, [bid(1, "50", rejected=True), bid(2, "100", passed_review=False)], (),
     {1: {"rank": None}, 2: {"invalid_reason": "failed_review"}}),
    ("lowest_price", "one valid", None, [bid(1, "50", passed_review=False), bid(2, "100")], (2,),
     {2: {"rank": 1, "tie": False, "price_score": None, "total": None}}),
    # mean = 2700000 / 3 = 900000; limit 900000 × 0.85 = 765000 -> 700000 flagged
    ("lowest_price", "abnormally low", None, [bid(1, "1000000"), bid(2, "1000000"), bid(3, "700000")], (3, 1, 2),
     {3: {"abnormally_low": True}, 1: {"abnormally_low": False, "tie": True}}),
    # t = 0.25: limit 675000 -> 700000 not flagged
    ("lowest_price", "threshold 25 %", None, [bid(1, "1000000"), bid(2, "1000000"), bid(3, "700000")], (3, 1, 2),
     {3: {"abnormally_low": False}}),
    # pass_fail: valid bids by price; adjustments do not count
    ("pass_fail", "by price", None, [bid(1, "300"), bid(2, "100", adjustments="500"), bid(3, "200")], (2, 3, 1),
     {2: {"rank": 1, "evaluated_price": "100"}, 1: {"rank": 3}}),
    ("pass_fail", "equal prices", None, [bid(1, "300"), bid(2, "300"), bid(3, "200")], (3, 1, 2),
     {1: {"rank": 2, "tie": True}, 2: {"rank": 2, "tie": True}, 3: {"rank": 1, "tie": False}}),
    ("pass_fail", "failed and above ceiling", "250",
     [bid(1, "300"), bid(2, "100", passed_review=False), bid(3, "200")], (3,),
     {1: {"invalid_reason": "above_ceiling"}, 2: {"invalid_reason": "failed_review"}, 3: {"rank": 1}}),
    ("pass_fail", "zero valid", "50", [bid(1, "300"), bid(2, "100")], (), {1: {"rank": None}}),
    ("pass_fail", "one valid", None, [bid(1, "300", rejected=True), bid(2, "100")], (2,), {2: {"rank": 1}}),
    ("pass_fail", "at the ceiling", "300", [bid(1, "300")], (1,), {1: {"valid": True, "rank": 1}}),
    # mean = (100 + 100 + 40) / 3 = 80; limit 68 -> 40 flagged
    ("pass_fail", "abnormally low", None, [bid(1, "100"), bid(2, "100"), bid(3, "40")], (3, 1, 2),
     {3: {"abnormally_low": True}}),
    ("pass_fail", "no scores", None, [bid(1, "100", "30")], (1,),
     {1: {"price_score": None, "subjective": None, "total": None, "deviation": None}}),
]


@pytest.mark.parametrize(("method", "ceiling", "bids", "ranking", "expected"),
                         [(c[0], *c[2:]) for c in PRICE_CASES], ids=[f"{c[0]}: {c[1]}" for c in PRICE_CASES])
def test_price_ranked_table(method, ceiling, bids, ranking, expected, request):
    raw = {"method": method}
    if "threshold 25" in request.node.callspec.id:
        raw["abnormally_low"] = {"below_benchmark": "0.25"}
    outcome = run(raw, bids, ceiling)
    assert outcome.benchmark is None
    assert outcome.ranking == ranking and outcome.valid_count == len(ranking)
    assert all(not b.in_benchmark for b in outcome.bids)
    check(outcome, expected)


def test_lowest_price_steps():
    outcome = run({"method": "lowest_price"}, [bid(1, "100", adjustments="-6"), bid(2, "95")])
    assert outcome.bids[0].steps[0].code == "evaluated_price"
    assert outcome.bids[0].steps[0].values == {"price": "100", "adjustments": "-6"}
    assert outcome.benchmark_steps[0].code == "reference.mean"
