"""Human-readable explanations of evaluation steps: a title msgid and the formula with its numbers."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from core.i18n import N_
from evaluation.methods.model import Step


def _prices(values: Mapping[str, str], prefix: str = "bid:") -> list[str]:
    return [value for key, value in values.items() if key.startswith(prefix)]


def _mean(v: Mapping[str, str], r: str) -> str:
    return f"mean = ({' + '.join(_prices(v))}) / {v['n']} = {r}"


def _trimmed(v: Mapping[str, str], r: str) -> str:
    return f"{_mean(v, r)}; left out: {', '.join(_prices(v, 'dropped:'))}"


def _floor(v: Mapping[str, str], r: str) -> str:
    text = (f"floor = {v['floor_factor']} × ({v['mean_weight']} × {v['mean']} + {v['ceiling_weight']} × "
            f"{v['ceiling']}) = {r}")
    excluded = _prices(v, "excluded:")
    return f"{text}; left out of the benchmark: {', '.join(excluded)}" if excluded else text


def _band(v: Mapping[str, str], r: str) -> str:
    start, end = v["from"] or "-∞", v["to"] or "+∞"
    sign = "+" if v["action"] == "add" else "-"
    return f"{sign} {v['rate']} × {v['span']} (D in [{start}, {end}] %) = {sign} {r}"


_FORMULAS: dict[str, tuple[str, Callable[[Mapping[str, str], str], str]]] = {
    "benchmark.mean": (N_("Mean of the prices in the benchmark set"), _mean),
    "benchmark.trimmed": (N_("Mean without the highest and lowest prices"), _trimmed),
    "benchmark.lowest": (N_("Lowest valid price"), lambda v, r: f"min({', '.join(_prices(v))}) = {r}"),
    "benchmark.downward": (N_("Downward coefficient applied"),
                           lambda v, r: f"B = {v['mean']} × (1 - {v['coefficient']}) = {r}"),
    "benchmark.floor": (N_("Floor of the benchmark set"), _floor),
    "benchmark.composite": (N_("Composite benchmark with the ceiling price"), lambda v, r: (
        f"B = ({v['mean_weight']} × {v['mean']} + {v['ceiling_weight']} × {v['ceiling']} × (1 - {v['delta']})) "
        f"× {v['k']} = {r}")),
    "benchmark": (N_("Benchmark price (rounded)"),
                  lambda v, r: f"B = round({v['value']}, {v['places']}) = {r}"),
    "reference.mean": (N_("Mean of the valid prices (reference for abnormally low prices)"), _mean),
    "deviation": (N_("Deviation from the benchmark price"),
                  lambda v, r: f"D = ({v['price']} - {v['benchmark']}) / {v['benchmark']} × 100 = {r} %"),
    "deviation.whole": (N_("Whole percents of the deviation"), lambda v, r: f"trunc({v['deviation']}) = {r}"),
    "score.above": (N_("Price score above the benchmark"),
                    lambda v, r: f"S = {v['base']} - {v['rate']} × {v['deviation']} = {r}"),
    "score.below": (N_("Price score below the benchmark"),
                    lambda v, r: f"S = {v['base']} - {v['rate']} × {v['deviation']} = {r}"),
    "score.band": (N_("Points of a deviation band"), _band),
    "score.rest": (N_("Points outside the deviation bands"), lambda v, r: f"- {v['rate']} × {v['span']} = - {r}"),
    "score.bands": (N_("Price score from the deviation bands"),
                    lambda v, r: f"S = {v['base']} + {v['added']} - {v['deducted']} = {r}"),
    "score.floor": (N_("Price score floored at zero"), lambda v, r: f"S = max(0, {v['score']}) = {r}"),
    "score.cap": (N_("Price score capped at the full score"),
                  lambda v, r: f"S = min({v['full']}, {v['score']}) = {r}"),
    "gp.sme": (N_("Price deduction for a small or medium enterprise"),
               lambda v, r: f"P' = {v['price']} × (1 - {v['deduction']}) = {r}"),
    "gp.score": (N_("Price score: lowest price over this price"),
                 lambda v, r: f"S = {v['benchmark']} / {v['price']} × {v['full']} = {r}"),
    "evaluated_price": (N_("Evaluated price (bid price with the quantified deviations)"),
                        lambda v, r: f"P' = {v['price']} + ({v['adjustments']}) = {r}"),
    "total": (N_("Total score"), lambda v, r: f"total = {v['price_score']} + {v['subjective']} = {r}"),
    "abnormally_low": (N_("Abnormally low price: ask for an explanation"),
                       lambda v, r: f"{v['price']} < {v['reference']} × (1 - {v['threshold']}) = {r}"),
}
CODES = tuple(_FORMULAS)


SHOWN_DECIMALS = 6  # an exact intermediate (a mean of three prices) is shown to 6 places, marked "…"


def shown(value: str) -> str:
    """A number as a reader checks it: exact when short, else cut to 6 decimal places and marked ``…``."""
    whole, dot, fraction = value.partition(".")
    if not dot or len(fraction) <= SHOWN_DECIMALS or not whole.lstrip("-").isdigit() or not fraction.isdigit():
        return value
    return f"{whole}.{fraction[:SHOWN_DECIMALS]}…"


def describe(step: Step) -> tuple[str, str]:
    """(title msgid, formula with the numbers) of ``step``; translate the title with ``gettext``.

    The numbers are the exact ones the method computed with; long intermediate values are shown cut to
    6 decimal places (marked ``…``); rounded results are shown whole."""
    title, formula = _FORMULAS[step.code]
    return title, formula({k: shown(v) for k, v in step.values.items()}, shown(step.result))
