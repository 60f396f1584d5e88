"""The evaluation methods (评标办法) as pure, versioned functions: bids in, scores and ranking out.

:data:`METHODS` maps ``(method, version)`` to a function ``(MethodSpec, LotInput) -> LotOutcome``; a
version is never changed once published, a changed rule is a new version. :func:`evaluate` dispatches.
Formulas follow DOMAIN §2: benchmark B (§2.2), deviation D and linear price score (§2.3), the GP
low-price-first score with SME deduction (§2.4), price-ranked methods (§2.1). No clock, no database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, localcontext

from flask_babel import lazy_gettext as _l

from core.errors import ValidationFailed
from evaluation.methods.model import (
    ABOVE_CEILING,
    FAILED_REVIEW,
    REJECTED,
    BidInput,
    BidOutcome,
    LotInput,
    LotOutcome,
    Step,
)
from evaluation.methods.numbers import CONTEXT, HUNDRED, ONE, ZERO, mean, text
from evaluation.methods.spec import (
    ADD,
    COMPOSITE,
    COMPREHENSIVE,
    GP_LOW_PRICE,
    LOWEST,
    LOWEST_PRICE,
    PASS_FAIL,
    TRIMMED_MEAN,
    Deviation,
    MethodSpec,
    Value,
    random_parameter_names,
)

M_UNKNOWN_METHOD = _l("There is no evaluation method %(method)s version %(version)s; use one of: %(allowed)s.")
M_NOT_DRAWN = _l("The random parameter %(name)s has not been drawn; draw it at the opening first.")
M_NOT_ALLOWED = _l("The drawn value %(value)s of %(name)s is not one of the values the tender fixes: "
                   "%(allowed)s.")
M_TWICE = _l("Bid %(bid)s appears twice in the lot; give each bid once.")
M_BAD_BID = _l("Bid %(bid)s has %(field)s = %(value)s; prices must be decimals above 0, subjective points decimals "
               "of at least 0, adjustments decimals.")
M_NEEDS_CEILING = _l("The composite benchmark uses the ceiling price of the lot; set the lot's ceiling price.")


@dataclass(frozen=True)
class _Priced:
    """A valid bid during the evaluation."""

    bid: BidInput
    evaluated: Decimal
    steps: tuple[Step, ...] = ()


def _shown(value: Decimal | str) -> str:
    """A number of a step: plain digits, trailing zeros beyond two decimals dropped (975100.000000 -> 975100.00)."""
    if isinstance(value, str):
        return value
    digits = text(value)
    if "." not in digits:
        return digits
    whole, fraction = digits.split(".")
    return f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"


def _step(code: str, result: Decimal, **values: Decimal | str) -> Step:
    return Step(code, {k.replace("__", ":"): _shown(v) for k, v in values.items()}, _shown(result))


def _prices_step(code: str, prices: Mapping[int, Decimal], result: Decimal, **extra: Decimal | str) -> Step:
    """A step over a set of prices: one value ``bid:<id>`` per price (by bid id), then ``extra``."""
    values = {f"bid:{bid}": _shown(prices[bid]) for bid in sorted(prices)}
    values.update({k.replace("__", ":"): _shown(v) for k, v in extra.items()})
    return Step(code, values, _shown(result))


# --- input checks -------------------------------------------------------------------------------------

def _check_bids(lot: LotInput) -> None:
    seen: set[int] = set()
    for bid in lot.bids:
        if bid.bid_id in seen:
            raise ValidationFailed(M_TWICE, bid=bid.bid_id)
        seen.add(bid.bid_id)
        checks = (("price", bid.price, Decimal(0), False), ("subjective", bid.subjective, Decimal(0), True),
                  ("adjustments", bid.adjustments, None, True))
        for name, value, low, low_allowed in checks:
            fine = isinstance(value, Decimal) and value.is_finite() and (
                low is None or value > low or (low_allowed and value == low))
            if not fine:
                raise ValidationFailed(M_BAD_BID, bid=bid.bid_id, field=name, value=str(value)[:20])


def _drawn(spec: MethodSpec, lot: LotInput) -> dict[str, Decimal]:
    """The drawn values the method needs, each checked against the values the tender fixes."""
    allowed = dict(spec.random_parameters)
    values = {}
    for name in sorted(random_parameter_names(spec)):
        if name not in lot.drawn or lot.drawn[name] is None:
            raise ValidationFailed(M_NOT_DRAWN, name=name, fields={f"drawn.{name}": M_NOT_DRAWN % {"name": name}})
        value = Decimal(str(lot.drawn[name]))
        choices = allowed.get(name, ())
        if all(Decimal(str(choice)) != value for choice in choices):
            raise ValidationFailed(M_NOT_ALLOWED, name=name, value=text(value), allowed=", ".join(choices))
        values[name] = value
    return values


def _resolve(value: Value, drawn: Mapping[str, Decimal]) -> Decimal:
    return value.literal if value.name is None else drawn[value.name]  # type: ignore[return-value]


def _invalid_reason(bid: BidInput, ceiling: Decimal | None) -> str | None:
    if not bid.passed_review:
        return FAILED_REVIEW
    if ceiling is not None and bid.price > ceiling:  # 条例 §51: above the ceiling price
        return ABOVE_CEILING
    if bid.rejected:
        return REJECTED
    return None


# --- benchmark (评标基准价, DOMAIN §2.2) ------------------------------------------------------------------

def _benchmark(spec: MethodSpec, prices: dict[int, Decimal], ceiling: Decimal | None,
               drawn: Mapping[str, Decimal]) -> tuple[Decimal, list[Step], set[int]]:
    """(B, steps, ids of the bids in the benchmark set V')."""
    bench = spec.benchmark
    assert bench is not None
    steps: list[Step] = []
    members = set(prices)
    if bench.strategy == LOWEST:
        raw = min(prices.values())
        steps.append(_prices_step("benchmark.lowest", prices, raw))
    elif bench.strategy == COMPOSITE:
        raw, members = _composite(spec, prices, ceiling, drawn, steps)
    else:
        ordered = sorted(prices, key=lambda bid: (prices[bid], bid))
        trim = bench.trim_count or 0
        if bench.strategy == TRIMMED_MEAN and len(ordered) > (bench.trim_above or 0):
            dropped = ordered[:trim] + ordered[len(ordered) - trim:]
            members = set(ordered[trim:len(ordered) - trim])
            kept = {bid: prices[bid] for bid in members}
            raw = mean(kept.values())
            steps.append(_prices_step("benchmark.trimmed", kept, raw, n=Decimal(len(kept)),
                                      **{f"dropped__{bid}": prices[bid] for bid in sorted(dropped)}))
        else:
            raw = mean(prices.values())
            steps.append(_prices_step("benchmark.mean", prices, raw, n=Decimal(len(prices))))
        if bench.downward is not None:
            k = _resolve(bench.downward, drawn)
            lowered = CONTEXT.multiply(raw, ONE - k)
            steps.append(_step("benchmark.downward", lowered, mean=raw, coefficient=k))
            raw = lowered
    benchmark = spec.rounding(raw)
    steps.append(_step("benchmark", benchmark, value=raw, places=str(spec.rounding.places)))
    return benchmark, steps, members


def _composite(spec: MethodSpec, prices: dict[int, Decimal], ceiling: Decimal | None,
               drawn: Mapping[str, Decimal], steps: list[Step]) -> tuple[Decimal, set[int]]:
    comp = spec.benchmark.composite  # type: ignore[union-attr]
    assert comp is not None
    if ceiling is None:
        raise ValidationFailed(M_NEEDS_CEILING)
    members = set(prices)
    if comp.floor_factor is not None:
        all_mean = mean(prices.values())
        floor = comp.floor_factor * (comp.mean_weight * all_mean + comp.ceiling_weight * ceiling)
        below = {bid for bid, price in prices.items() if price < floor}
        if below and below != members:  # bids below the floor leave V' (not rejected); never all of them
            members -= below
        steps.append(_step("benchmark.floor", floor, mean=all_mean, ceiling=ceiling, mean_weight=comp.mean_weight,
                           ceiling_weight=comp.ceiling_weight, floor_factor=comp.floor_factor,
                           **{f"excluded__{bid}": prices[bid] for bid in sorted(set(prices) - members)}))
    kept = {bid: prices[bid] for bid in members}
    kept_mean = mean(kept.values())
    steps.append(_prices_step("benchmark.mean", kept, kept_mean, n=Decimal(len(kept))))
    delta, k = _resolve(comp.delta, drawn), _resolve(comp.k, drawn)
    raw = (comp.mean_weight * kept_mean + comp.ceiling_weight * ceiling * (ONE - delta)) * k
    steps.append(_step("benchmark.composite", raw, mean=kept_mean, ceiling=ceiling, mean_weight=comp.mean_weight,
                       ceiling_weight=comp.ceiling_weight, delta=delta, k=k))
    return raw, members


# --- price scores ------------------------------------------------------------------------------------

def _deviation_score(spec: MethodSpec, deviation: Decimal) -> tuple[Decimal, list[Step]]:
    """The price score S for a deviation D (percent, rounded), DOMAIN §2.3, with its steps."""
    dev: Deviation = spec.deviation  # type: ignore[assignment]
    full: Decimal = spec.full_score  # type: ignore[assignment]
    base = full if dev.base is None else dev.base
    steps: list[Step] = []
    used = deviation
    if not dev.interpolate:  # only whole percents count
        used = deviation.to_integral_value(rounding=ROUND_DOWN)
        steps.append(_step("deviation.whole", used, deviation=deviation))
    if not dev.bands:
        rate = dev.above if used >= 0 else dev.below
        raw = base - rate * abs(used)
        steps.append(_step("score.above" if used >= 0 else "score.below", raw, base=base, rate=rate,
                           deviation=abs(used)))
    else:
        raw = _banded(dev, base, used, steps)
    score = spec.rounding(raw)
    if score < 0:
        steps.append(_step("score.floor", ZERO, score=score))
        score = ZERO
    elif score > full:
        steps.append(_step("score.cap", full, score=score, full=full))
        score = full
    return score, steps


def _banded(dev: Deviation, base: Decimal, used: Decimal, steps: list[Step]) -> Decimal:
    """Tiered rates: the path from D = 0 to D is cut by the bands; parts in no band use E1 / E2."""
    low, high = min(ZERO, used), max(ZERO, used)
    added = deducted = covered = ZERO
    for band in dev.bands:
        start = low if band.start is None else max(band.start, low)
        end = high if band.end is None else min(band.end, high)
        span = end - start
        if span <= 0:
            continue
        points = band.rate * span
        covered += span
        if band.action == ADD:
            added += points
        else:
            deducted += points
        steps.append(_step("score.band", points, **{"from": "" if band.start is None else text(band.start)},
                           to="" if band.end is None else text(band.end), rate=band.rate, action=band.action,
                           span=span))
    rest = (high - low) - covered
    if rest > 0:
        rate = dev.above if used > 0 else dev.below
        deducted += rate * rest
        steps.append(_step("score.rest", rate * rest, rate=rate, span=rest))
    raw = base + added - deducted
    steps.append(_step("score.bands", raw, base=base, added=added, deducted=deducted))
    return raw


# --- ranking -----------------------------------------------------------------------------------------

def _ranks(keys: dict[int, tuple]) -> tuple[tuple[int, ...], dict[int, int], set[int]]:
    """(ranking, rank by bid, tied bids) from sort keys, smaller is better; equal keys share a rank."""
    ranking = tuple(sorted(keys, key=lambda bid: (keys[bid], bid)))
    ranks: dict[int, int] = {}
    for position, bid in enumerate(ranking):
        previous = ranking[position - 1] if position else None
        same = previous is not None and keys[previous] == keys[bid]
        ranks[bid] = ranks[previous] if same else position + 1  # type: ignore[index]
    counts: dict[tuple, int] = {}
    for key in keys.values():
        counts[key] = counts.get(key, 0) + 1
    return ranking, ranks, {bid for bid, key in keys.items() if counts[key] > 1}


def _abnormal(spec: MethodSpec, bid: BidInput, reference: Decimal | None) -> Step | None:
    """The abnormally-low flag (DOMAIN §2.6): P < reference × (1 − t); a flag, never a rejection."""
    if spec.abnormally_low is None or reference is None:
        return None
    limit = reference * (ONE - spec.abnormally_low)
    if bid.price >= limit:
        return None
    return _step("abnormally_low", limit, price=bid.price, reference=reference, threshold=spec.abnormally_low)


def _reference(spec: MethodSpec, valid: list[_Priced], benchmark: Decimal | None,
               steps: list[Step]) -> Decimal | None:
    """The price abnormally low bids are compared with: B for mean-type benchmarks, else the mean price."""
    if not valid:
        return None
    if benchmark is not None and spec.benchmark is not None and spec.benchmark.strategy != LOWEST:
        return benchmark
    prices = {item.bid.bid_id: item.bid.price for item in valid}
    reference = mean(prices.values())
    steps.append(_prices_step("reference.mean", prices, reference, n=Decimal(len(prices))))
    return reference


def _outcome(bid: BidInput, reason: str | None) -> BidOutcome:
    return BidOutcome(bid.bid_id, False, reason, None, None, None, None, None, None, False, False, False, ())


# --- the methods -------------------------------------------------------------------------------------

def _scored(spec: MethodSpec, lot: LotInput) -> LotOutcome:
    """综合评估法 (comprehensive) and 政府采购 低价优先法 (gp_low_price): price score + subjective points."""
    drawn = _drawn(spec, lot)
    gp = spec.method == GP_LOW_PRICE
    reasons = {bid.bid_id: _invalid_reason(bid, lot.ceiling_price) for bid in lot.bids}
    valid: list[_Priced] = []
    for bid in lot.bids:
        if reasons[bid.bid_id] is not None:
            continue
        if gp and bid.is_sme:  # SME price deduction before scoring
            evaluated = spec.rounding(bid.price * (ONE - spec.sme_deduction))  # type: ignore[operator]
            valid.append(_Priced(bid, evaluated, (_step("gp.sme", evaluated, price=bid.price,
                                                        deduction=spec.sme_deduction),)))  # type: ignore[arg-type]
        else:
            valid.append(_Priced(bid, bid.price))
    if not valid:
        return LotOutcome(spec.method, spec.version, None, (), tuple(_outcome(b, reasons[b.bid_id]) for b in lot.bids),
                          (), 0)
    prices = {item.bid.bid_id: item.evaluated for item in valid}
    benchmark, bench_steps, members = _benchmark(spec, prices, lot.ceiling_price, drawn)
    reference = _reference(spec, valid, benchmark, bench_steps)
    full: Decimal = spec.full_score  # type: ignore[assignment]
    results: dict[int, BidOutcome] = {}
    keys: dict[int, tuple] = {}
    for item in valid:
        bid, steps = item.bid, list(item.steps)
        deviation = None
        if gp:
            score = min(full, spec.rounding(benchmark / item.evaluated * full))
            steps.append(_step("gp.score", score, benchmark=benchmark, price=item.evaluated, full=full))
        else:
            deviation = spec.rounding((item.evaluated - benchmark) / benchmark * HUNDRED)
            steps.append(_step("deviation", deviation, price=item.evaluated, benchmark=benchmark))
            score, score_steps = _deviation_score(spec, deviation)
            steps += score_steps
        total = spec.rounding(score + bid.subjective)
        steps.append(_step("total", total, price_score=score, subjective=bid.subjective))
        flag = _abnormal(spec, bid, reference)
        if flag:
            steps.append(flag)
        keys[bid.bid_id] = (-total, item.evaluated, -bid.subjective) if gp else (-total, item.evaluated)
        results[bid.bid_id] = BidOutcome(bid.bid_id, True, None, item.evaluated, deviation, score, bid.subjective,
                                         total, None, False, flag is not None, bid.bid_id in members, tuple(steps))
    return _finish(spec, lot, benchmark, bench_steps, results, keys, reasons)


def _price_ranked(spec: MethodSpec, lot: LotInput) -> LotOutcome:
    """经评审的最低投标价法 (lowest_price) and 合格制 (pass_fail): valid bids ranked by (evaluated) price."""
    reasons = {bid.bid_id: _invalid_reason(bid, lot.ceiling_price) for bid in lot.bids}
    valid: list[_Priced] = []
    for bid in lot.bids:
        if reasons[bid.bid_id] is not None:
            continue
        if spec.method == LOWEST_PRICE:  # 评标价 = 报价 ± Σ 折算
            evaluated = spec.rounding(bid.price + bid.adjustments)
            valid.append(_Priced(bid, evaluated, (_step("evaluated_price", evaluated, price=bid.price,
                                                        adjustments=bid.adjustments),)))
        else:
            valid.append(_Priced(bid, bid.price))
    bench_steps: list[Step] = []
    reference = _reference(spec, valid, None, bench_steps)
    results: dict[int, BidOutcome] = {}
    keys: dict[int, tuple] = {}
    for item in valid:
        bid, steps = item.bid, list(item.steps)
        flag = _abnormal(spec, bid, reference)
        if flag:
            steps.append(flag)
        keys[bid.bid_id] = (item.evaluated, bid.price)
        results[bid.bid_id] = BidOutcome(bid.bid_id, True, None, item.evaluated, None, None, None, None, None,
                                         False, flag is not None, False, tuple(steps))
    return _finish(spec, lot, None, bench_steps, results, keys, reasons)


def _finish(spec: MethodSpec, lot: LotInput, benchmark: Decimal | None, bench_steps: list[Step],
            results: dict[int, BidOutcome], keys: dict[int, tuple], reasons: dict[int, str | None]) -> LotOutcome:
    ranking, ranks, tied = _ranks(keys)
    bids = []
    for bid in lot.bids:
        result = results.get(bid.bid_id)
        if result is None:
            bids.append(_outcome(bid, reasons[bid.bid_id]))
            continue
        bids.append(BidOutcome(**{**result.__dict__, "rank": ranks[bid.bid_id], "tie": bid.bid_id in tied}))
    return LotOutcome(spec.method, spec.version, benchmark, tuple(bench_steps), tuple(bids), ranking, len(results))


METHODS: dict[tuple[str, str], Callable[[MethodSpec, LotInput], LotOutcome]] = {
    (COMPREHENSIVE, "1"): _scored,
    (GP_LOW_PRICE, "1"): _scored,
    (LOWEST_PRICE, "1"): _price_ranked,
    (PASS_FAIL, "1"): _price_ranked,
}


def method_for(name: str, version: str) -> Callable[[MethodSpec, LotInput], LotOutcome]:
    """The function of method ``name`` at ``version``; :class:`ValidationFailed` for an unknown pair."""
    try:
        return METHODS[(name, version)]
    except KeyError:
        allowed = ", ".join(f"{m} {v}" for m, v in sorted(METHODS))
        raise ValidationFailed(M_UNKNOWN_METHOD, method=str(name)[:40], version=str(version)[:20],
                               allowed=allowed) from None


def evaluate(spec: MethodSpec, lot: LotInput) -> LotOutcome:
    """Evaluate ``lot`` by ``spec``: validity, benchmark, price scores, totals, ranking, with every step."""
    function = method_for(spec.method, spec.version)
    _check_bids(lot)
    with localcontext(CONTEXT):
        return function(spec, lot)


__all__ = ["METHODS", "evaluate", "method_for"]
