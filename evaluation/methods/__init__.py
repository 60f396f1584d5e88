"""Evaluation methods (评标办法) as pure, versioned functions.

``parse_method`` reads a tender's ``evaluation_method``; ``evaluate`` turns a lot's bids into scores, a
ranking and an explanation of every number; ``review`` and ``aggregate_item`` / ``aggregate_bid`` combine
the committee's votes and scores. See ``docs/evaluation-methods.md``.
"""

from evaluation.methods.engine import METHODS, evaluate, method_for
from evaluation.methods.explain import CODES, describe
from evaluation.methods.model import BidInput, BidOutcome, LotInput, LotOutcome, Step
from evaluation.methods.numbers import Rounding
from evaluation.methods.review import Aggregate, ReviewOutcome, aggregate_bid, aggregate_item, review
from evaluation.methods.spec import (
    Award,
    Band,
    Benchmark,
    Composite,
    Deviation,
    MethodSpec,
    Value,
    parse_method,
    random_parameter_names,
)

__all__ = [
    "CODES", "METHODS", "Aggregate", "Award", "Band", "Benchmark", "BidInput", "BidOutcome", "Composite",
    "Deviation", "LotInput", "LotOutcome", "MethodSpec", "ReviewOutcome", "Rounding", "Step", "Value",
    "aggregate_bid", "aggregate_item", "describe", "evaluate", "method_for", "parse_method",
    "random_parameter_names", "review",
]
