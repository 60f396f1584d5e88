"""Who enters the scoring room, and what each viewer sees of it."""

from __future__ import annotations

from tests.evaluation.room_support import *  # noqa: F403


def test_smoke(make_room):
    r = make_room(experts=5, bidders=3)
    assert r.evaluation.status.value == "scoring"
