"""parse_method: defaults, the normalised round trip, and each refusal with its field path."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.errors import ValidationFailed
from evaluation.methods import Rounding, method_for, parse_method, random_parameter_names

DEMO = {"method": "comprehensive", "benchmark": "trimmed_mean", "weights": {"price": 60, "technical": 30, "credit": 10},
        "downward_coefficient": "K",
        "random_parameters": {"K": ["0.0025", "0.0050", "0.0075", "0.0100", "0.0125", "0.0150"]}}


def test_comprehensive_defaults():
    spec = parse_method({})
    assert (spec.method, spec.version, spec.full_score) == ("comprehensive", "1", Decimal(60))
    assert spec.benchmark.strategy == "mean" and spec.benchmark.downward is None
    assert (spec.deviation.above, spec.deviation.below, spec.deviation.interpolate) == (2, 1, True)
    assert spec.deviation.bands == () and spec.deviation.base is None
    assert spec.rounding == Rounding(2, "half_up")
    assert spec.drop_extremes_at == 5 and spec.abnormally_low == Decimal("0.15")
    assert (spec.award.mode, spec.award.candidates) == ("rank_first", 3)
    assert spec.publicity_days == 3 and spec.sme_deduction is None
    assert random_parameter_names(spec) == set()


def test_trimmed_defaults_and_demo_parameters():
    spec = parse_method(DEMO)
    assert (spec.benchmark.trim_above, spec.benchmark.trim_count) == (3, 1)
    assert random_parameter_names(spec) == {"K"}
    assert dict(spec.weights) == {"price": 60, "technical": 30, "credit": 10}


def test_gp_defaults():
    spec = parse_method({"method": "gp_low_price"})
    assert spec.full_score == Decimal(30) and spec.benchmark.strategy == "lowest"
    assert spec.sme_deduction == Decimal("0.10") and spec.drop_extremes_at is None and spec.deviation is None


@pytest.mark.parametrize("method", ["lowest_price", "pass_fail"])
def test_price_ranked_defaults(method):
    spec = parse_method({"method": method})
    assert spec.full_score is None and spec.benchmark is None and spec.deviation is None
    assert spec.drop_extremes_at == 5


def test_composite_names_and_literals():
    spec = parse_method({"benchmark": "composite", "random_parameters": {"D": ["0.12", "0.2"], "Q": ["0.95"]},
                         "composite": {"delta": "D", "k": "0.97"}})
    assert random_parameter_names(spec) == {"D"}
    comp = spec.benchmark.composite
    assert (comp.mean_weight, comp.ceiling_weight, comp.k.literal, comp.floor_factor) == (
        Decimal("0.7"), Decimal("0.3"), Decimal("0.97"), None)


ROUND_TRIP = [
    {}, DEMO, {"method": "gp_low_price", "gp": {"sme_deduction": 0.15}, "weights": {"price": "40"}},
    {"method": "lowest_price", "adjustments": [{"code": "duration", "per_day": "1000"}],
     "criteria": [{"code": "F1", "kind": "pass_fail", "title": "x", "group": "形式"}]},
    {"method": "pass_fail", "decryption_window_minutes": 45, "deviation_threshold": "0.25"},
    {"benchmark": "composite", "random_parameters": {"D": ["0.12", "0.2"], "Q": ["0.95", "0.97"]},
     "composite": {"delta": "D", "k": "Q", "floor_factor": "0.75", "mean_weight": "0.6", "ceiling_weight": "0.4"},
     "deviation": {"above": "1.5", "below": "0.5", "interpolate": False, "base": "55",
                   "bands": [{"from": None, "to": "-3", "rate": "1", "action": "deduct"},
                             {"from": "-3", "to": "0", "rate": "2", "action": "add"}]},
     "rounding": {"places": 3, "mode": "half_even"}, "aggregation": {"drop_extremes_at": None},
     "abnormally_low": None, "award": {"mode": "separated", "separated_count": 5, "pick": "vote_then_lot"},
     "publicity_days": 5},
]


@pytest.mark.parametrize("raw", ROUND_TRIP, ids=range(len(ROUND_TRIP)))
def test_round_trip(raw):
    spec = parse_method(raw)
    normalised = spec.to_dict()
    assert parse_method(normalised) == spec
    assert parse_method(normalised).to_dict() == normalised
    for key in ("criteria", "deviation_threshold", "decryption_window_minutes", "adjustments"):
        if key in raw:
            assert normalised[key] == raw[key]


def test_normalised_form_spells_decimals_as_strings():
    data = parse_method(DEMO).to_dict()
    assert data["weights"]["price"] == "60" and data["deviation"]["above"] == "2"
    assert data["abnormally_low"] == {"below_benchmark": "0.15"} and data["downward_coefficient"] == "K"


K = {"K": ["0.005", "0.01"]}
REFUSALS = [
    ({"method": "auction"}, "evaluation_method.method"),
    ({"method_version": "2"}, "evaluation_method.method_version"),
    ({"weights": {"price": "abc"}}, "evaluation_method.weights.price"),
    ({"weights": {"price": 0}}, "evaluation_method.weights.price"),
    ({"method": "gp_low_price", "weights": {"price": 70}}, "evaluation_method.weights.price"),
    ({"benchmark": "median"}, "evaluation_method.benchmark"),
    ({"benchmark": "trimmed_mean", "trim_above": 1}, "evaluation_method.trim_above"),
    ({"benchmark": "trimmed_mean", "trim_count": 2}, "evaluation_method.trim_above"),
    ({"downward_coefficient": "K"}, "evaluation_method.downward_coefficient"),
    ({"downward_coefficient": "1.5"}, "evaluation_method.downward_coefficient"),
    ({"downward_coefficient": "K-1", "random_parameters": K}, "evaluation_method.downward_coefficient"),
    ({"downward_coefficient": "K", "random_parameters": {"K": ["0.005", "2"]}},
     "evaluation_method.random_parameters.K[1]"),
    ({"random_parameters": {"K": "0.005"}}, "evaluation_method.random_parameters.K"),
    ({"benchmark": "composite", "composite": {"delta": "0.1", "k": "1", "mean_weight": "0.6"}},
     "evaluation_method.composite"),
    ({"benchmark": "composite", "composite": {"k": "1"}}, "evaluation_method.composite.delta"),
    ({"benchmark": "composite", "composite": {"delta": "0.1", "k": "1"}, "downward_coefficient": "0.01"},
     "evaluation_method.downward_coefficient"),
    ({"benchmark": "composite", "composite": {"delta": "0.1", "k": "1", "floor_factor": "1"}},
     "evaluation_method.composite.floor_factor"),
    ({"deviation": {"above": "-1"}}, "evaluation_method.deviation.above"),
    ({"deviation": {"interpolate": "yes"}}, "evaluation_method.deviation.interpolate"),
    ({"deviation": {"base": "61"}}, "evaluation_method.deviation.base"),
    ({"deviation": {"bands": [{"from": "-3", "to": "0", "rate": "1", "action": "add"},
                              {"from": "-1", "to": "2", "rate": "1", "action": "deduct"}]}},
     "evaluation_method.deviation.bands"),
    ({"deviation": {"bands": [{"from": "0", "to": "-3", "rate": "1", "action": "add"}]}},
     "evaluation_method.deviation.bands[0]"),
    ({"deviation": {"bands": [{"from": "0", "to": "3", "rate": "1", "action": "bonus"}]}},
     "evaluation_method.deviation.bands[0].action"),
    ({"deviation": {"bands": [{"from": "0", "to": "3", "action": "add"}]}},
     "evaluation_method.deviation.bands[0].rate"),
    ({"deviation": {"bands": "0-3"}}, "evaluation_method.deviation.bands"),
    ({"rounding": {"mode": "ceiling"}}, "evaluation_method.rounding.mode"),
    ({"rounding": {"places": 9}}, "evaluation_method.rounding.places"),
    ({"aggregation": {"drop_extremes_at": 2}}, "evaluation_method.aggregation.drop_extremes_at"),
    ({"abnormally_low": {"below_benchmark": "1"}}, "evaluation_method.abnormally_low.below_benchmark"),
    ({"method": "gp_low_price", "gp": {"sme_deduction": "0.25"}}, "evaluation_method.gp.sme_deduction"),
    ({"method": "gp_low_price", "gp": {"sme_deduction": "0.05"}}, "evaluation_method.gp.sme_deduction"),
    ({"method": "gp_low_price", "benchmark": "mean"}, "evaluation_method.benchmark"),
    ({"award": {"mode": "lottery"}}, "evaluation_method.award.mode"),
    ({"award": {"candidates": 4}}, "evaluation_method.award.candidates"),
    ({"award": {"mode": "separated", "pick": "dice"}}, "evaluation_method.award.pick"),
    ({"award": {"mode": "separated", "separated_count": 1}}, "evaluation_method.award.separated_count"),
    ({"publicity_days": 2}, "evaluation_method.publicity_days"),
    ({"benchmak": "mean"}, "evaluation_method.benchmak"),
    ({"weights": [60, 40]}, "evaluation_method.weights"),
]


@pytest.mark.parametrize(("raw", "path"), REFUSALS, ids=[p for _, p in REFUSALS])
def test_refusals_name_the_field(raw, path):
    with pytest.raises(ValidationFailed) as caught:
        parse_method(raw)
    assert path in caught.value.fields, caught.value.fields
    assert str(caught.value.fields[path]).strip()


def test_not_a_mapping():
    with pytest.raises(ValidationFailed) as caught:
        parse_method(["comprehensive"])  # type: ignore[arg-type]
    assert "evaluation_method" in caught.value.fields


def test_several_problems_are_collected():
    with pytest.raises(ValidationFailed) as caught:
        parse_method({"rounding": {"mode": "x"}, "publicity_days": 1, "deviation": {"above": "x"}})
    assert set(caught.value.fields) == {"evaluation_method.rounding.mode", "evaluation_method.publicity_days",
                                        "evaluation_method.deviation.above"}
    assert caught.value.params["count"] == 3


def test_message_says_what_is_allowed():
    with pytest.raises(ValidationFailed) as caught:
        parse_method({"benchmark": "median"})
    text = caught.value.to_dict()["message"]
    assert "mean, trimmed_mean, composite, lowest" in text and "median" in text


def test_method_for_unknown_pair():
    assert callable(method_for("comprehensive", "1"))
    with pytest.raises(ValidationFailed):
        method_for("comprehensive", "9")
