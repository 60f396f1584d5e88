"""Inputs and outputs of the evaluation methods (评标办法): frozen dataclasses, decimals only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

FAILED_REVIEW, ABOVE_CEILING, REJECTED = "failed_review", "above_ceiling", "rejected"


@dataclass(frozen=True)
class BidInput:
    """One bid of a lot as the evaluation sees it."""

    bid_id: int
    price: Decimal  # bid price (投标报价)
    passed_review: bool = True  # preliminary review (初步评审) outcome; False = rejected (否决)
    subjective: Decimal = Decimal(0)  # aggregated subjective points (sum of item averages)
    adjustments: Decimal = Decimal(0)  # lowest_price: 评标价 = price + adjustments
    is_sme: bool = False  # gp_low_price deduction (中小企业价格扣除)
    rejected: bool = False  # rejected by a committee decision (e.g. below cost after clarification)


@dataclass(frozen=True)
class LotInput:
    """A lot (标段) to evaluate: ceiling price (最高投标限价), bids, random parameters drawn at the opening."""

    ceiling_price: Decimal | None
    bids: tuple[BidInput, ...]
    drawn: Mapping[str, Decimal]


@dataclass(frozen=True)
class Step:
    """One line of an explanation: the rule applied (``code``), every number used, the result."""

    code: str
    values: Mapping[str, str]
    result: str


@dataclass(frozen=True)
class BidOutcome:
    """The evaluation of one bid."""

    bid_id: int
    valid: bool
    invalid_reason: str | None  # "failed_review" | "above_ceiling" | "rejected"
    evaluated_price: Decimal | None  # price after adjustments / SME deduction (评标价)
    deviation: Decimal | None  # D in percent (偏差率, comprehensive)
    price_score: Decimal | None
    subjective: Decimal | None
    total: Decimal | None  # price_score + subjective (comprehensive, gp); None for price-ranked methods
    rank: int | None  # 1-based among valid bids; equal rank for unresolved ties
    tie: bool  # tied with another after every tie rule: the tenderer decides
    abnormally_low: bool
    in_benchmark: bool  # whether its price entered V' (the benchmark set)
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class LotOutcome:
    """The evaluation of a lot: benchmark, every bid's outcome (input order) and the ranking."""

    method: str
    version: str
    benchmark: Decimal | None
    benchmark_steps: tuple[Step, ...]
    bids: tuple[BidOutcome, ...]
    ranking: tuple[int, ...]  # valid bid ids, best first
    valid_count: int
