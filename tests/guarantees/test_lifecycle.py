"""The order state machine (pure, table-driven)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from guarantees.lifecycle import ALLOWED, FINAL, TransitionRefused, reached, transition
from guarantees.lifecycle import OrderState as S

ALLOWED_STEPS = [
    (S.DRAFT, S.APPLIED), (S.DRAFT, S.CANCELLED), (S.DRAFT, S.APPROVED), (S.DRAFT, S.REJECTED), (S.APPLIED, S.APPROVED),
    (S.APPLIED, S.REJECTED), (S.APPLIED, S.CANCELLED), (S.APPROVED, S.ISSUED), (S.APPROVED, S.CANCELLED),
    (S.ISSUED, S.BOUND_TO_BID), (S.ISSUED, S.RELEASED), (S.BOUND_TO_BID, S.VERIFIED_AT_OPENING),
    (S.BOUND_TO_BID, S.RELEASED), (S.BOUND_TO_BID, S.CLAIMED), (S.VERIFIED_AT_OPENING, S.RELEASED),
    (S.VERIFIED_AT_OPENING, S.CLAIMED), (S.CLAIMED, S.PAID), (S.CLAIMED, S.DENIED), (S.DENIED, S.RELEASED),
    (S.DENIED, S.CLOSED), (S.PAID, S.CLOSED), (S.RELEASED, S.CLOSED),
    (S.ISSUED, S.CLOSED), (S.BOUND_TO_BID, S.CLOSED), (S.VERIFIED_AT_OPENING, S.CLOSED),  # expired in force
]
REFUSED_STEPS = [
    (S.DRAFT, S.ISSUED), (S.APPLIED, S.ISSUED), (S.ISSUED, S.CANCELLED), (S.ISSUED, S.CLAIMED),
    (S.BOUND_TO_BID, S.ISSUED), (S.RELEASED, S.CLAIMED), (S.CLAIMED, S.CLOSED), (S.APPROVED, S.CLOSED), (S.CLAIMED, S.RELEASED), (S.PAID, S.RELEASED),
    (S.REJECTED, S.APPROVED), (S.CANCELLED, S.APPLIED), (S.CLOSED, S.RELEASED), (S.VERIFIED_AT_OPENING, S.ISSUED),
]


@dataclass
class Order:
    state: S


@pytest.mark.parametrize(("current", "target"), ALLOWED_STEPS)
def test_allowed(current, target):
    order = Order(current)
    assert transition(order, target) == current
    assert order.state == target


@pytest.mark.parametrize(("current", "target"), REFUSED_STEPS)
def test_refused_leaves_state(current, target):
    order = Order(current)
    with pytest.raises(TransitionRefused) as refused:
        transition(order, target)
    assert order.state == current
    assert current.value in refused.value.to_dict()["message"]


def test_table_is_exactly_the_documented_one():
    assert {(a, b) for a, targets in ALLOWED.items() for b in targets} == set(ALLOWED_STEPS)
    assert {S.CANCELLED, S.REJECTED, S.CLOSED} == FINAL


@pytest.mark.parametrize(("current", "step", "expected"), [
    (S.APPROVED, S.APPROVED, True), (S.ISSUED, S.APPROVED, True), (S.CLOSED, S.APPROVED, True),
    (S.APPLIED, S.APPROVED, False), (S.REJECTED, S.APPROVED, False), (S.CANCELLED, S.APPROVED, False),
    (S.APPROVED, S.ISSUED, False), (S.BOUND_TO_BID, S.ISSUED, True), (S.PAID, S.ISSUED, True),
])
def test_reached(current, step, expected):
    assert reached(current, step) is expected
