"""Helpers of the evaluation-method tests: build lots from short tables and compare outcomes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from evaluation.methods import BidInput, LotInput, LotOutcome, evaluate, parse_method


def bid(bid_id: int, price: str, subjective: str = "0", **flags: Any) -> BidInput:
    extra = {k: Decimal(v) if k == "adjustments" else v for k, v in flags.items()}
    return BidInput(bid_id, Decimal(price), subjective=Decimal(subjective), **extra)


def run(raw: dict, bids: list[BidInput], ceiling: str | None = None, drawn: dict | None = None) -> LotOutcome:
    lot = LotInput(None if ceiling is None else Decimal(ceiling), tuple(bids),
                   {k: Decimal(v) for k, v in (drawn or {}).items()})
    return evaluate(parse_method(raw), lot)


def check(outcome: LotOutcome, expected: dict[int, dict[str, Any]]) -> None:
    """Every expected field of every listed bid; decimals given as strings compare as Decimal."""
    by_id = {b.bid_id: b for b in outcome.bids}
    for bid_id, fields in expected.items():
        for name, want in fields.items():
            got = getattr(by_id[bid_id], name)
            if isinstance(want, str) and name not in ("invalid_reason",):
                want = Decimal(want)
            assert got == want, f"bid {bid_id} {name}: got {got!r}, want {want!r}"
