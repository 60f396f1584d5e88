"""The parameters of an evaluation method (评标办法), read from the tender's ``evaluation_method`` JSON.

:func:`parse_method` checks the JSON fixed at publication and fills every default; :class:`MethodSpec`
is the result, frozen, with :meth:`MethodSpec.to_dict` giving the normalised JSON back
(``parse_method(spec.to_dict()) == spec``). Every key, default and allowed value is listed in
``docs/evaluation-methods.md``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l

from core.errors import ValidationFailed
from evaluation.methods.numbers import ONE, ROUNDING_MODES, ZERO, Rounding, decimal_of, int_of, text

COMPREHENSIVE, LOWEST_PRICE, GP_LOW_PRICE, PASS_FAIL = "comprehensive", "lowest_price", "gp_low_price", "pass_fail"
METHOD_NAMES = (COMPREHENSIVE, LOWEST_PRICE, GP_LOW_PRICE, PASS_FAIL)
SCORED_METHODS = (COMPREHENSIVE, GP_LOW_PRICE)
MEAN, TRIMMED_MEAN, COMPOSITE, LOWEST = "mean", "trimmed_mean", "composite", "lowest"
BENCHMARKS = (MEAN, TRIMMED_MEAN, COMPOSITE, LOWEST)
ADD, DEDUCT = "add", "deduct"
RANK_FIRST, SEPARATED = "rank_first", "separated"
PICKS = ("price", "vote", "vote_then_lot")
DEFAULT_PRICE_SCORE = {COMPREHENSIVE: Decimal(60), GP_LOW_PRICE: Decimal(30)}
GP_PRICE_WEIGHT = (Decimal(10), Decimal(60))  # 87号令 §55: goods 30–60 %, services 10–30 %
SME_DEDUCTION = (Decimal("0.10"), Decimal("0.20"))  # 财库〔2020〕46号 as amended
DEFAULT_DROP_EXTREMES_AT = {COMPREHENSIVE: 5, LOWEST_PRICE: 5, PASS_FAIL: 5, GP_LOW_PRICE: None}
MIN_PUBLICITY_DAYS = 3  # 条例 §54
# keys other modules read; kept as given (canonical JSON) and handed back by to_dict
PASSTHROUGH = ("criteria", "deviation_threshold", "decryption_window_minutes", "adjustments")
KEYS = ("method", "method_version", "weights", "benchmark", "trim_above", "trim_count", "downward_coefficient",
        "composite", "deviation", "rounding", "aggregation", "abnormally_low", "gp", "award", "publicity_days",
        "random_parameters", *PASSTHROUGH)
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")
PREFIX = "evaluation_method"

M_ENUM = _l("%(field)s is %(value)s; use one of: %(allowed)s.")
M_NUMBER = _l("%(field)s must be a number in %(range)s; it is %(value)s.")
M_WHOLE = _l("%(field)s must be a whole number from %(min)s to %(max)s; it is %(value)s.")
M_OBJECT = _l("%(field)s must be an object (a mapping of keys to values).")
M_LIST = _l("%(field)s must be a list.")
M_BOOL = _l("%(field)s must be true or false.")
M_UNKNOWN = _l("%(field)s is not a setting of the evaluation method; remove it or use one of: %(allowed)s.")
M_PARAM = _l("%(field)s must be a decimal number or the name of a random parameter drawn at the opening; "
             "it is %(value)s.")
M_UNDRAWN = _l("%(field)s names the random parameter %(name)s; list its values under "
               "evaluation_method.random_parameters.%(name)s.")
M_SUM = _l("%(field)s: mean_weight + ceiling_weight must add up to 1; they add up to %(value)s.")
M_BAND_ORDER = _l("%(field)s: from (%(start)s) must be below to (%(end)s).")
M_BANDS_OVERLAP = _l("%(field)s: bands %(first)s and %(second)s overlap; let each band start where the "
                     "previous one ends or later.")
M_TRIM = _l("%(field)s (%(value)s) must be at least twice trim_count (%(count)s), so that prices are left "
            "after trimming.")
M_NOT_FOR = _l("%(field)s does not apply to method %(method)s; remove it or use %(allowed)s.")
M_SEVERAL = _l("The evaluation method has %(count)s problems; correct each field listed.")


@dataclass(frozen=True)
class Value:
    """A number fixed in the tender (``literal``) or the ``name`` of a random parameter drawn at the opening."""

    literal: Decimal | None = None
    name: str | None = None

    def to_json(self) -> str:
        return self.name if self.name is not None else text(self.literal)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Composite:
    """Composite benchmark with the ceiling price: ``B = (w1·mean(V') + w2·L·(1 − Δ)) × K``."""

    mean_weight: Decimal
    ceiling_weight: Decimal
    delta: Value
    k: Value
    floor_factor: Decimal | None = None


@dataclass(frozen=True)
class Benchmark:
    """How the benchmark price B (评标基准价) is found."""

    strategy: str = MEAN
    trim_above: int | None = None
    trim_count: int | None = None
    downward: Value | None = None  # B = mean × (1 − K) (下浮系数)
    composite: Composite | None = None


@dataclass(frozen=True)
class Band:
    """One tier of the deviation score: ``rate`` points per 1 % of D inside [start, end] (None = open)."""

    start: Decimal | None
    end: Decimal | None
    rate: Decimal
    action: str


@dataclass(frozen=True)
class Deviation:
    """The linear price score from the deviation D (偏差率): E1 = ``above``, E2 = ``below``."""

    above: Decimal = Decimal(2)
    below: Decimal = Decimal(1)
    interpolate: bool = True
    base: Decimal | None = None  # the score at D = 0; None = the full price score F
    bands: tuple[Band, ...] = ()


@dataclass(frozen=True)
class Award:
    """How the winner is found: ranked candidates, or 评定分离 (separated evaluation and award)."""

    mode: str = RANK_FIRST
    candidates: int | None = 3
    separated_count: int | None = None
    pick: str | None = None


@dataclass(frozen=True)
class MethodSpec:
    """A checked evaluation method with every default filled (see :func:`parse_method`)."""

    method: str = COMPREHENSIVE
    version: str = "1"
    weights: tuple[tuple[str, Decimal], ...] = ()
    benchmark: Benchmark | None = None
    deviation: Deviation | None = None
    rounding: Rounding = Rounding()
    drop_extremes_at: int | None = None
    abnormally_low: Decimal | None = Decimal("0.15")
    sme_deduction: Decimal | None = None
    award: Award = Award()
    publicity_days: int = MIN_PUBLICITY_DAYS
    random_parameters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    passthrough: tuple[tuple[str, str], ...] = field(default=())

    @property
    def full_score(self) -> Decimal | None:
        """F, the full price score (``weights.price``) of a scored method; None for price-ranked methods."""
        return dict(self.weights).get("price") if self.method in SCORED_METHODS else None

    def to_dict(self) -> dict[str, Any]:
        """The normalised JSON: every default filled, decimals as strings, keys of unused settings null."""
        bench, dev = self.benchmark, self.deviation
        comp = bench.composite if bench else None
        out: dict[str, Any] = {
            "method": self.method, "method_version": self.version,
            "weights": {name: text(value) for name, value in self.weights},
            "benchmark": bench.strategy if bench else None,
            "trim_above": bench.trim_above if bench else None,
            "trim_count": bench.trim_count if bench else None,
            "downward_coefficient": bench.downward.to_json() if bench and bench.downward else None,
            "composite": None if comp is None else {
                "mean_weight": text(comp.mean_weight), "ceiling_weight": text(comp.ceiling_weight),
                "delta": comp.delta.to_json(), "k": comp.k.to_json(),
                "floor_factor": None if comp.floor_factor is None else text(comp.floor_factor)},
            "deviation": None if dev is None else {
                "above": text(dev.above), "below": text(dev.below), "interpolate": dev.interpolate,
                "base": None if dev.base is None else text(dev.base),
                "bands": [{"from": None if b.start is None else text(b.start),
                           "to": None if b.end is None else text(b.end),
                           "rate": text(b.rate), "action": b.action} for b in dev.bands]},
            "rounding": {"places": self.rounding.places, "mode": self.rounding.mode},
            "aggregation": {"drop_extremes_at": self.drop_extremes_at},
            "abnormally_low": None if self.abnormally_low is None else {
                "below_benchmark": text(self.abnormally_low)},
            "gp": None if self.sme_deduction is None else {"sme_deduction": text(self.sme_deduction)},
            "award": {"mode": self.award.mode, "candidates": self.award.candidates,
                      "separated_count": self.award.separated_count, "pick": self.award.pick},
            "publicity_days": self.publicity_days,
            "random_parameters": {name: list(values) for name, values in self.random_parameters},
        }
        out.update({key: json.loads(value) for key, value in self.passthrough})
        return out


def random_parameter_names(spec: MethodSpec) -> set[str]:
    """The names of the random parameters drawn at the opening that ``spec`` needs to evaluate."""
    bench = spec.benchmark
    if bench is None:
        return set()
    values = [bench.downward] + ([bench.composite.delta, bench.composite.k] if bench.composite else [])
    return {value.name for value in values if value is not None and value.name is not None}


class _Problems:
    """Problems found while parsing, each with the field path; raised together."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Any, dict[str, Any]]] = []

    def add(self, path: str, message: Any, **params: Any) -> None:
        where = f"{PREFIX}.{path}" if path else PREFIX
        self.items.append((where, message, {"field": where, **params}))

    def raise_any(self) -> None:
        if not self.items:
            return
        fields = {path: message % params for path, message, params in self.items}
        if len(self.items) == 1:
            _, message, params = self.items[0]
            raise ValidationFailed(message, fields=fields, **params)
        raise ValidationFailed(M_SEVERAL, fields=fields, count=len(self.items))


def _short(value: Any) -> str:
    return str(value)[:40]


class _Reader:
    def __init__(self, problems: _Problems) -> None:
        self.problems = problems

    def mapping(self, raw: Any, path: str) -> Mapping[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            self.problems.add(path, M_OBJECT)
            return {}
        return raw

    def number(self, raw: Any, path: str, default: Decimal | None, low: Decimal, high: Decimal,
               *, low_open: bool = False, high_open: bool = False) -> Decimal | None:
        if raw is None:
            return default
        value = decimal_of(raw)
        if value is None or value < low or value > high or (low_open and value == low) or (
                high_open and value == high):
            interval = f"{'(' if low_open else '['}{text(low)}, {text(high)}{')' if high_open else ']'}"
            self.problems.add(path, M_NUMBER, range=interval, value=_short(raw))
            return default
        return value

    def whole(self, raw: Any, path: str, default: int | None, low: int, high: int) -> int | None:
        if raw is None:
            return default
        value = int_of(raw)
        if value is None or not low <= value <= high:
            self.problems.add(path, M_WHOLE, min=low, max=high, value=_short(raw))
            return default
        return value

    def choice(self, raw: Any, path: str, default: str | None, allowed: tuple[str, ...]) -> str | None:
        if raw is None:
            return default
        if raw not in allowed:
            self.problems.add(path, M_ENUM, value=_short(raw), allowed=", ".join(allowed))
            return default
        return raw

    def flag(self, raw: Any, path: str, default: bool) -> bool:
        if raw is None:
            return default
        if not isinstance(raw, bool):
            self.problems.add(path, M_BOOL)
            return default
        return raw

    def value(self, raw: Any, path: str, low: Decimal, high: Decimal, parameters: Mapping[str, Any]) -> Value:
        """A literal in [low, high) or the name of a random parameter listed in ``random_parameters``."""
        number = decimal_of(raw) if not isinstance(raw, str) or not NAME.match(raw) else None
        if number is not None:
            checked = self.number(raw, path, None, low, high, high_open=True)
            return Value(literal=checked if checked is not None else low)
        if isinstance(raw, str) and NAME.match(raw):
            if raw not in parameters:
                self.problems.add(path, M_UNDRAWN, name=raw)
            for i, item in enumerate(parameters.get(raw, ())):  # every value that may be drawn must fit
                self.number(item, f"random_parameters.{raw}[{i}]", None, low, high, high_open=True)
            return Value(name=raw)
        self.problems.add(path, M_PARAM, value=_short(raw))
        return Value(literal=low)


def parse_method(raw: Mapping[str, Any] | None) -> MethodSpec:
    """Check a tender's ``evaluation_method`` and fill its defaults; :class:`ValidationFailed` lists every
    problem found with its path (``evaluation_method.deviation.above`` ...) and what is allowed."""
    from evaluation.methods.engine import METHODS  # the registry imports this module

    problems = _Problems()
    read = _Reader(problems)
    raw = read.mapping(raw, "")
    problems.raise_any()
    for key in raw:
        if key not in KEYS:
            problems.add(str(key), M_UNKNOWN, allowed=", ".join(KEYS))
    method = read.choice(raw.get("method"), "method", COMPREHENSIVE, METHOD_NAMES)
    problems.raise_any()  # every default below depends on the method
    assert method is not None
    version = str(raw.get("method_version") if raw.get("method_version") is not None else "1")
    known = sorted(v for m, v in METHODS if m == method)
    if (method, version) not in METHODS:
        problems.add("method_version", M_ENUM, value=_short(version), allowed=", ".join(known))
    parameters = _random_parameters(read, raw.get("random_parameters"))
    weights = _weights(read, raw.get("weights"), method)
    benchmark = _benchmark(read, raw, method, parameters) if method in SCORED_METHODS else None
    deviation = _deviation(read, raw.get("deviation"), dict(weights).get("price")) \
        if method == COMPREHENSIVE else None
    rounding_raw = read.mapping(raw.get("rounding"), "rounding")
    rounding = Rounding(read.whole(rounding_raw.get("places"), "rounding.places", 2, 0, 6) or 0,
                        read.choice(rounding_raw.get("mode"), "rounding.mode", "half_up",
                                    tuple(ROUNDING_MODES)) or "half_up")
    aggregation = read.mapping(raw.get("aggregation"), "aggregation")
    drop_at = DEFAULT_DROP_EXTREMES_AT[method]
    if "drop_extremes_at" in aggregation:
        drop_at = read.whole(aggregation["drop_extremes_at"], "aggregation.drop_extremes_at", None, 3, 99)
    low_raw = raw.get("abnormally_low", {})
    abnormally_low = None
    if low_raw is not None:
        low = read.mapping(low_raw, "abnormally_low")
        abnormally_low = read.number(low.get("below_benchmark"), "abnormally_low.below_benchmark",
                                     Decimal("0.15"), ZERO, ONE, low_open=True, high_open=True)
    sme = None
    if method == GP_LOW_PRICE:
        gp = read.mapping(raw.get("gp"), "gp")
        sme = read.number(gp.get("sme_deduction"), "gp.sme_deduction", SME_DEDUCTION[0], *SME_DEDUCTION)
    award = _award(read, read.mapping(raw.get("award"), "award"))
    days = read.whole(raw.get("publicity_days"), "publicity_days", MIN_PUBLICITY_DAYS, MIN_PUBLICITY_DAYS, 60)
    passthrough = tuple((key, json.dumps(raw[key], sort_keys=True, ensure_ascii=False, default=str))
                        for key in PASSTHROUGH if raw.get(key) is not None)
    problems.raise_any()
    return MethodSpec(method=method, version=version, weights=weights, benchmark=benchmark, deviation=deviation,
                      rounding=rounding, drop_extremes_at=drop_at, abnormally_low=abnormally_low,
                      sme_deduction=sme, award=award, publicity_days=days or MIN_PUBLICITY_DAYS,
                      random_parameters=parameters, passthrough=passthrough)


def _random_parameters(read: _Reader, raw: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    found = []
    for name, values in sorted(read.mapping(raw, "random_parameters").items(), key=lambda kv: str(kv[0])):
        if not isinstance(values, list | tuple):
            read.problems.add(f"random_parameters.{name}", M_LIST)
            continue
        found.append((str(name), tuple(repr(v) if isinstance(v, float) else str(v) for v in values)))
    return tuple(found)


def _weights(read: _Reader, raw: Any, method: str) -> tuple[tuple[str, Decimal], ...]:
    weights: dict[str, Decimal] = {}
    for name, value in read.mapping(raw, "weights").items():
        number = read.number(value, f"weights.{name}", None, ZERO, Decimal(100))
        if number is not None:
            weights[str(name)] = number
    if method in SCORED_METHODS:
        low, high = GP_PRICE_WEIGHT if method == GP_LOW_PRICE else (ZERO, Decimal(100))
        price = weights.get("price", DEFAULT_PRICE_SCORE[method])
        weights["price"] = read.number(price, "weights.price", DEFAULT_PRICE_SCORE[method], low, high,
                                       low_open=method == COMPREHENSIVE) or DEFAULT_PRICE_SCORE[method]
    return tuple(sorted(weights.items()))


def _benchmark(read: _Reader, raw: Mapping[str, Any], method: str, parameters: tuple) -> Benchmark:
    names = dict(parameters)
    if method == GP_LOW_PRICE:  # 87号令 §55: the lowest price meeting the requirements
        for key in ("benchmark", "downward_coefficient", "composite"):
            if raw.get(key) is not None and not (key == "benchmark" and raw[key] == LOWEST):
                read.problems.add(key, M_NOT_FOR, method=method, allowed="benchmark: lowest")
        return Benchmark(strategy=LOWEST)
    strategy = read.choice(raw.get("benchmark"), "benchmark", MEAN, BENCHMARKS) or MEAN
    trim_above = trim_count = None
    if strategy == TRIMMED_MEAN:
        trim_count = read.whole(raw.get("trim_count"), "trim_count", 1, 1, 10) or 1
        trim_above = read.whole(raw.get("trim_above"), "trim_above", 3, 2, 99) or 3
        if trim_above < 2 * trim_count:
            read.problems.add("trim_above", M_TRIM, value=trim_above, count=trim_count)
    downward = None
    if raw.get("downward_coefficient") is not None:
        if strategy == COMPOSITE:
            read.problems.add("downward_coefficient", M_NOT_FOR, method=f"{method} ({COMPOSITE})",
                              allowed="composite.k")
        else:
            downward = read.value(raw["downward_coefficient"], "downward_coefficient", ZERO, ONE, names)
    composite = None
    if strategy == COMPOSITE:
        comp = read.mapping(raw.get("composite"), "composite")
        w1 = read.number(comp.get("mean_weight"), "composite.mean_weight", Decimal("0.7"), ZERO, ONE)
        w2 = read.number(comp.get("ceiling_weight"), "composite.ceiling_weight", Decimal("0.3"), ZERO, ONE)
        if w1 is not None and w2 is not None and w1 + w2 != ONE:
            read.problems.add("composite", M_SUM, value=text(w1 + w2))
        for key in ("delta", "k"):
            if comp.get(key) is None:
                read.problems.add(f"composite.{key}", M_PARAM, value="null")
        delta = read.value(comp.get("delta"), "composite.delta", ZERO, ONE, names) \
            if comp.get("delta") is not None else Value(literal=ZERO)
        k = read.value(comp.get("k"), "composite.k", Decimal("0.5"), Decimal("1.5"), names) \
            if comp.get("k") is not None else Value(literal=ONE)
        floor = read.number(comp.get("floor_factor"), "composite.floor_factor", None, ZERO, ONE,
                            low_open=True, high_open=True)
        composite = Composite(w1 or ZERO, w2 or ZERO, delta, k, floor)
    return Benchmark(strategy=strategy, trim_above=trim_above, trim_count=trim_count, downward=downward,
                     composite=composite)


def _deviation(read: _Reader, raw: Any, full: Decimal | None) -> Deviation:
    dev = read.mapping(raw, "deviation")
    top = full or DEFAULT_PRICE_SCORE[COMPREHENSIVE]
    above = read.number(dev.get("above"), "deviation.above", Decimal(2), ZERO, Decimal(100))
    below = read.number(dev.get("below"), "deviation.below", ONE, ZERO, Decimal(100))
    interpolate = read.flag(dev.get("interpolate"), "deviation.interpolate", True)
    base = read.number(dev.get("base"), "deviation.base", None, ZERO, top)
    bands = []
    raw_bands = dev.get("bands")
    if raw_bands is not None and not isinstance(raw_bands, list):
        read.problems.add("deviation.bands", M_LIST)
        raw_bands = []
    for i, item in enumerate(raw_bands or []):
        path = f"deviation.bands[{i}]"
        band = read.mapping(item, path)
        start = read.number(band.get("from"), f"{path}.from", None, Decimal(-100), Decimal(1000))
        end = read.number(band.get("to"), f"{path}.to", None, Decimal(-100), Decimal(1000))
        rate = read.number(band.get("rate"), f"{path}.rate", None, ZERO, Decimal(100))
        if band.get("rate") is None:
            read.problems.add(f"{path}.rate", M_NUMBER, range="[0, 100]", value="null")
        action = read.choice(band.get("action"), f"{path}.action", DEDUCT, (ADD, DEDUCT)) or DEDUCT
        if start is not None and end is not None and start >= end:
            read.problems.add(path, M_BAND_ORDER, start=text(start), end=text(end))
            continue
        bands.append((i, Band(start, end, rate or ZERO, action)))
    ordered = sorted(bands, key=lambda ib: (ib[1].start is not None, ib[1].start or ZERO))
    for (i, first), (j, second) in zip(ordered, ordered[1:], strict=False):
        if first.end is None or (second.start is None or second.start < first.end):
            read.problems.add("deviation.bands", M_BANDS_OVERLAP, first=i, second=j)
    return Deviation(above or ZERO, below or ZERO, interpolate, base, tuple(band for _, band in ordered))


def _award(read: _Reader, raw: Mapping[str, Any]) -> Award:
    mode = read.choice(raw.get("mode"), "award.mode", RANK_FIRST, (RANK_FIRST, SEPARATED)) or RANK_FIRST
    if mode == RANK_FIRST:  # 条例 §53: at most 3 ranked candidates
        return Award(mode, read.whole(raw.get("candidates"), "award.candidates", 3, 1, 3), None, None)
    count = read.whole(raw.get("separated_count"), "award.separated_count", 3, 2, 10)
    return Award(mode, None, count, read.choice(raw.get("pick"), "award.pick", "price", PICKS))
