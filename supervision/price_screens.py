"""Statistical screens on the bid prices of a lot (报价统计预警), after the bid-rigging literature.

Imhof, Karagök & Rutz (2018), "Screening for bid rigging — does it work?", Journal of Competition Law &
Economics 14(2); Huber & Imhof (2019), "Machine learning with screens for detecting bid-rigging cartels",
International Journal of Industrial Organization 65; OECD, "Guidelines for fighting bid rigging in public
procurement" (2009, rev. 2025). Under a cartel the cover bids are placed close together and well above the
designated winner, so the bids are less dispersed (low coefficient of variation), the gap between the two
lowest bids is large against the spread of the losing bids (relative distance), the bids are bunched
(high kurtosis) with the winner alone below them (negative skewness). 《招标投标法实施条例》§40(4) adds
regularly spaced prices (投标报价呈规律性差异).

All arithmetic is :class:`~decimal.Decimal`. A screen stays silent below its minimum number of priced
bids. Thresholds and minimums are fields of :class:`~supervision.screens.ScreenParams`.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, localcontext

from core.i18n import N_
from supervision.screens import STATISTICAL, BidFacts, Finding, ScreenParams, bidders_evidence, number


def mean(values: Sequence[Decimal]) -> Decimal:
    return sum(values, Decimal(0)) / len(values)


def stdev(values: Sequence[Decimal]) -> Decimal:
    """The sample standard deviation (n − 1 in the denominator); needs two values."""
    m = mean(values)
    return (sum(((v - m) ** 2 for v in values), Decimal(0)) / (len(values) - 1)).sqrt()


def coefficient_of_variation(prices: Sequence[Decimal]) -> Decimal | None:
    """CV = sd / mean of the bids; None below two bids or for a non-positive mean."""
    if len(prices) < 2:
        return None
    m = mean(prices)
    return stdev(prices) / m if m > 0 else None


def relative_distance(prices: Sequence[Decimal]) -> Decimal | None:
    """RD = (p2 − p1) / sd(losing bids), p1 ≤ p2 the two lowest bids, the losing bids all but p1.

    None below three bids, when p2 = p1, or when the losing bids are all equal (no spread to measure
    against; :func:`price_findings` reports that case on its own)."""
    if len(prices) < 3:
        return None
    ordered = sorted(prices)
    spread = stdev(ordered[1:])
    if ordered[1] == ordered[0] or spread == 0:
        return None
    return (ordered[1] - ordered[0]) / spread


def percentage_difference(prices: Sequence[Decimal]) -> Decimal | None:
    """D = (p2 − p1) / p1 between the two lowest bids."""
    if len(prices) < 2:
        return None
    ordered = sorted(prices)
    return (ordered[1] - ordered[0]) / ordered[0] if ordered[0] > 0 else None


def _moments(prices: Sequence[Decimal]) -> tuple[Decimal, Decimal, Decimal]:
    m = mean(prices)
    n = len(prices)
    m2 = sum(((p - m) ** 2 for p in prices), Decimal(0)) / n
    m3 = sum(((p - m) ** 3 for p in prices), Decimal(0)) / n
    m4 = sum(((p - m) ** 4 for p in prices), Decimal(0)) / n
    return m2, m3, m4


def skewness(prices: Sequence[Decimal]) -> Decimal | None:
    """The bias-corrected sample skewness G1 (as Excel's SKEW); None below three bids or all equal."""
    n = len(prices)
    if n < 3:
        return None
    m2, m3, _ = _moments(prices)
    if m2 == 0:
        return None
    g1 = m3 / (m2 * m2.sqrt())
    return (Decimal(n * (n - 1)).sqrt() / (n - 2)) * g1


def kurtosis(prices: Sequence[Decimal]) -> Decimal | None:
    """The bias-corrected sample excess kurtosis G2 (as Excel's KURT); None below four bids or all equal."""
    n = len(prices)
    if n < 4:
        return None
    m2, _, m4 = _moments(prices)
    if m2 == 0:
        return None
    g2 = m4 / (m2 * m2) - 3
    return Decimal(n - 1) / ((n - 2) * (n - 3)) * ((n + 1) * g2 + 6)


def regular_run(prices: Sequence[Decimal], min_run: int, cv_max: Decimal) -> tuple[int, int, Decimal] | None:
    """The longest run of consecutive sorted prices (at least ``min_run``) whose gaps are nearly equal.

    Returns ``(start, end, cv)``: the run is ``sorted(prices)[start:end]`` and ``cv`` the sample CV of
    its gaps (≤ ``cv_max``, all gaps positive); the earliest run wins a tie in length, then the lower CV.
    """
    ordered = sorted(prices)
    n = len(ordered)
    gaps = [b - a for a, b in zip(ordered, ordered[1:], strict=False)]
    best: tuple[int, int, Decimal] | None = None
    for start in range(n - min_run + 1):
        for end in range(n, start + min_run - 1, -1):
            if best is not None and end - start <= best[1] - best[0]:
                break
            window = gaps[start:end - 1]
            if min(window) <= 0:
                continue
            cv = stdev(window) / mean(window)
            if cv <= cv_max:
                best = (start, end, cv)
                break
    return best


def price_findings(lot: str, bids: Sequence[BidFacts], params: ScreenParams) -> list[Finding]:
    """The statistical findings of one lot: ``low_cv``, ``relative_distance``, ``kurtosis``, ``skewness``,
    ``regular_spacing``. ``bid_ids`` holds every priced bid of the lot."""
    priced = sorted((b for b in bids if b.price is not None and b.price > 0), key=lambda b: (b.price, b.bid_id))
    if len(priced) < 3:
        return []
    with localcontext() as ctx:
        ctx.prec = 28
        return _price_findings(lot, priced, params)


def _price_findings(lot: str, priced: list[BidFacts], params: ScreenParams) -> list[Finding]:
    prices = [b.price for b in priced]
    n = len(prices)
    bid_ids = tuple(sorted(b.bid_id for b in priced))
    base = {"prices": [{"bid_id": b.bid_id, "bidder": b.bidder, "price": str(b.price)} for b in priced],
            "bids": bidders_evidence(priced), "n": n}
    findings = []

    def add(code: str, title: str, explanation: str, values: dict[str, str], extra: dict) -> None:
        findings.append(Finding(code=code, kind=STATISTICAL, lot=lot, bid_ids=bid_ids, title=title,
                                explanation=explanation, params={"n": str(n), **values},
                                evidence={**base, **values, **extra}))

    if n >= params.cv_min_bids:
        cv = coefficient_of_variation(prices)
        if cv is not None and cv < params.cv_max:
            add("low_cv", N_("Bids unusually close together"),
                N_("The %(n)s bids differ unusually little: their coefficient of variation is %(cv)s, below "
                   "%(threshold)s. Independent bidders usually spread more."),
                {"cv": number(cv), "threshold": number(params.cv_max)},
                {"mean": number(mean(prices), 2), "sd": number(stdev(prices), 2)})
    if n >= params.rd_min_bids:
        ordered = sorted(prices)
        spread = stdev(ordered[1:])
        rd = relative_distance(prices)
        d = percentage_difference(prices)
        covers_equal = spread == 0 and ordered[1] > ordered[0]
        if covers_equal or (rd is not None and rd >= params.rd_min):
            add("relative_distance", N_("Lowest bid far below tightly grouped others"),
                N_("The gap between the two lowest bids is %(rd)s times the spread of the other bids "
                   "(threshold %(threshold)s): the higher bids look placed to lose."),
                {"rd": "inf" if covers_equal else number(rd), "threshold": number(params.rd_min)},
                {"lowest": str(ordered[0]), "second": str(ordered[1]), "sd_losing": number(spread, 2),
                 "percentage_difference": number(d) if d is not None else None})
    if n >= max(params.kurtosis_min_bids, 4):
        k = kurtosis(prices)
        if k is not None and k >= params.kurtosis_min:
            add("kurtosis", N_("Bids bunched together"),
                N_("The %(n)s bids are bunched around one value with few apart (excess kurtosis %(kurtosis)s, "
                   "threshold %(threshold)s)."),
                {"kurtosis": number(k), "threshold": number(params.kurtosis_min)}, {})
    if n >= max(params.skewness_min_bids, 3):
        s = skewness(prices)
        if s is not None and s <= params.skewness_max:
            add("skewness", N_("Lowest bid set apart from the others"),
                N_("The bids are strongly skewed (skewness %(skewness)s, threshold %(threshold)s): the lowest "
                   "bids lie far below a group of higher bids."),
                {"skewness": number(s), "threshold": number(params.skewness_max)}, {})
    if n >= params.spacing_min_bids:
        run = regular_run(prices, params.spacing_min_bids, params.spacing_cv_max)
        if run is not None:
            start, end, cv = run
            members = priced[start:end]
            gaps = [b.price - a.price for a, b in zip(members, members[1:], strict=False)]
            add("regular_spacing", N_("Regularly spaced prices"),
                N_("%(count)s bids are spaced at nearly equal steps of about %(step)s (the gaps vary by %(cv)s, "
                   "threshold %(threshold)s): prices at regular intervals suggest a common hand."),
                {"count": str(end - start), "step": number(mean(gaps), 2), "cv": number(cv),
                 "threshold": number(params.spacing_cv_max)},
                {"run": [{"bid_id": b.bid_id, "bidder": b.bidder, "price": str(b.price)} for b in members],
                 "gaps": [str(g) for g in gaps]})
    return findings
