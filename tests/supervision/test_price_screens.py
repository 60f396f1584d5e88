"""The price statistics (CV, relative distance, skewness, kurtosis, regular spacing) against hand-computed values,
and the price screens' thresholds and minimum bid counts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from supervision import price_screens as ps
from supervision.screens import BidFacts, ScreenParams


def D(*values) -> list[Decimal]:  # noqa: N802
    return [Decimal(str(v)) for v in values]


def _bids(prices: list[Decimal]) -> list[BidFacts]:
    return [BidFacts(bid_id=10 + i, bidder=f"B{i}", organisation_id=i, lot="01", price=p)
            for i, p in enumerate(prices)]


def _close(value: Decimal | None, expected: str, tol: str = "0.0005") -> bool:
    return value is not None and abs(value - Decimal(expected)) <= Decimal(tol)


def test_statistics_of_an_even_ladder():
    prices = D(130, 100, 120, 110)
    assert _close(ps.coefficient_of_variation(prices), "0.112264")  # 12.9099 / 115
    assert ps.relative_distance(prices) == Decimal(1)  # (110 - 100) / sd(110, 120, 130) = 10 / 10
    assert ps.percentage_difference(prices) == Decimal("0.1")
    assert ps.skewness(prices) == 0
    assert _close(ps.kurtosis(prices), "-1.2")  # Excel KURT(100, 110, 120, 130)
    assert ps.regular_run(prices, 4, Decimal("0.05")) == (0, 4, Decimal(0))


def test_skewness_and_kurtosis_of_an_outlier():
    prices = D(1, 2, 3, 10)
    assert _close(ps.skewness(prices), "1.763632")  # Excel SKEW
    assert _close(ps.kurtosis(prices), "3.228")  # Excel KURT
    assert ps.skewness(D(10, 9, 8, 1)) == -ps.skewness(prices)


def test_degenerate_inputs():
    assert ps.coefficient_of_variation(D(5)) is None
    assert ps.relative_distance(D(1, 2)) is None
    assert ps.relative_distance(D(1, 1, 3, 5)) is None  # p2 = p1
    assert ps.relative_distance(D(1, 3, 3, 3)) is None  # losing bids all equal
    assert ps.skewness(D(2, 2, 2)) is None
    assert ps.kurtosis(D(1, 2, 3)) is None
    assert ps.regular_run(D(1, 2, 2, 3), 4, Decimal("0.05")) is None  # a zero gap is no step


def test_regular_run_finds_a_ladder_inside_the_lot():
    prices = D(900, 1000, 1010, 1020, 1030, 1100.5)
    start, end, cv = ps.regular_run(prices, 4, Decimal("0.05"))
    assert sorted(prices)[start:end] == D(1000, 1010, 1020, 1030)
    assert cv == 0


def _codes(prices, params=ScreenParams()) -> list[str]:
    return [f.code for f in ps.price_findings("01", _bids(prices), params)]


def test_low_cv_fires_below_its_threshold_only():
    assert "low_cv" in _codes(D(1000, 1001, 1003, 1004, 1006))
    assert "low_cv" not in _codes(D(1000, 1030, 1060, 1100, 1150))


def test_relative_distance_names_the_two_lowest():
    bids = _bids(D(900, 1000, 1001, 1002, 1003))
    [finding] = [f for f in ps.price_findings("01", bids, ScreenParams()) if f.code == "relative_distance"]
    assert finding.evidence["lowest"] == "900" and finding.evidence["second"] == "1000"
    assert Decimal(finding.params["rd"]) == Decimal("77.4597")  # 100 / sd(1000..1003) = 100 / 1.29099
    assert finding.evidence["percentage_difference"] == "0.1111"
    assert finding.bid_ids == (10, 11, 12, 13, 14)


def test_identical_cover_bids_count_as_infinite_distance():
    [finding] = [f for f in ps.price_findings("01", _bids(D(900, 1000, 1000, 1000)), ScreenParams())
                 if f.code == "relative_distance"]
    assert finding.params["rd"] == "inf"


@pytest.mark.parametrize("code, prices", [
    ("kurtosis", D(900, 1000, 1000.5, 1001.25, 1001.5, 1002, 1003, 1003.5, 1002.75, 1100)),
    ("skewness", D(800, 1000, 1001, 1002, 1003)),
    ("regular_spacing", D(1000, 1020, 1040, 1060)),
])
def test_shape_screens_fire(code, prices):
    assert code in _codes(prices)


def test_minimum_bid_counts_silence_the_screens():
    params = ScreenParams(cv_min_bids=6, rd_min_bids=6, skewness_min_bids=6, spacing_min_bids=6,
                          kurtosis_min_bids=6)
    assert _codes(D(800, 1000, 1000.5, 1001, 1001.5), params) == []
    assert _codes(D(800, 1000, 1001)) == []  # three bids: below every default minimum but skewness'
    assert ps.price_findings("01", _bids(D(1000, 1000.5)), ScreenParams()) == []


def test_findings_are_deterministic_strings():
    findings = ps.price_findings("01", _bids(D(800, 1000, 1001, 1002, 1003)), ScreenParams())
    assert findings == ps.price_findings("01", _bids(D(800, 1000, 1001, 1002, 1003)), ScreenParams())
    for finding in findings:
        assert all(isinstance(v, str) for v in finding.params.values())
        assert finding.evidence["prices"][0] == {"bid_id": 10, "bidder": "B0", "price": "800"}
