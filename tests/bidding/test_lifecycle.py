"""The tender state machine: every allowed step, a sample of refused ones, suspension."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bidding.errors import TransitionRefused
from bidding.lifecycle import ALLOWED, FINAL, can_transition, transition
from bidding.models import TenderStatus as S


@dataclass
class FakeTender:
    status: S
    is_suspended: bool = False


ALLOWED_STEPS = [
    (S.DRAFT, S.PUBLISHED), (S.DRAFT, S.CANCELLED),
    (S.PUBLISHED, S.OPENING), (S.PUBLISHED, S.FAILED), (S.PUBLISHED, S.CANCELLED),
    (S.OPENING, S.EVALUATION), (S.OPENING, S.FAILED), (S.OPENING, S.CANCELLED),
    (S.EVALUATION, S.PUBLICITY), (S.EVALUATION, S.FAILED), (S.EVALUATION, S.CANCELLED),
    (S.PUBLICITY, S.AWARDED), (S.PUBLICITY, S.EVALUATION), (S.PUBLICITY, S.FAILED), (S.PUBLICITY, S.CANCELLED),
]


def test_table_is_exactly_the_documented_steps():
    assert sorted((a.value, b.value) for a, targets in ALLOWED.items() for b in targets) == \
        sorted((a.value, b.value) for a, b in ALLOWED_STEPS)
    assert frozenset({S.AWARDED, S.FAILED, S.CANCELLED}) == FINAL


@pytest.mark.parametrize(("current", "target"), ALLOWED_STEPS)
def test_allowed_steps(current, target):
    tender = FakeTender(current)
    assert transition(tender, target) == current
    assert tender.status == target


@pytest.mark.parametrize(("current", "target"), [
    (S.DRAFT, S.OPENING), (S.DRAFT, S.AWARDED), (S.DRAFT, S.DRAFT), (S.PUBLISHED, S.DRAFT),
    (S.PUBLISHED, S.PUBLISHED), (S.PUBLISHED, S.AWARDED), (S.OPENING, S.PUBLISHED), (S.EVALUATION, S.AWARDED),
    (S.PUBLICITY, S.PUBLISHED),
])
def test_forbidden_steps_name_the_allowed_ones(current, target):
    tender = FakeTender(current)
    with pytest.raises(TransitionRefused) as info:
        transition(tender, target)
    assert tender.status == current
    message = info.value.to_dict()["message"]
    assert f"cannot become {target.value}" in message
    for allowed in ALLOWED[current]:
        assert allowed.value in message


@pytest.mark.parametrize("final", [S.AWARDED, S.FAILED, S.CANCELLED])
@pytest.mark.parametrize("target", [S.DRAFT, S.PUBLISHED, S.CANCELLED])
def test_final_states_are_final(final, target):
    with pytest.raises(TransitionRefused) as info:
        transition(FakeTender(final), target)
    assert "nothing more can happen" in info.value.to_dict()["message"]
    assert not can_transition(final, target)


@pytest.mark.parametrize(("current", "target", "blocked"), [
    (S.PUBLISHED, S.OPENING, True), (S.OPENING, S.EVALUATION, True), (S.PUBLICITY, S.AWARDED, True),
    (S.PUBLISHED, S.CANCELLED, False), (S.PUBLISHED, S.FAILED, False),
])
def test_suspension_blocks_progress_but_not_cancellation(current, target, blocked):
    tender = FakeTender(current, is_suspended=True)
    if blocked:
        with pytest.raises(TransitionRefused) as info:
            transition(tender, target)
        assert info.value.code == "suspended" and tender.status == current
    else:
        transition(tender, target)
        assert tender.status == target
