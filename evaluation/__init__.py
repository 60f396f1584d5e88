"""Evaluation (评标): expert pool, drawing, committees, scoring rooms, methods, reports, publicity."""

from __future__ import annotations

from typing import Any

from bidding.services import register_method_check
from evaluation import pool_models, result_models, room_models


def _check_method(raw: dict[str, Any]) -> dict[str, Any]:
    """At publication: the method's parameters checked and fixed with every default written out."""
    from evaluation.criteria import criteria_for
    from evaluation.methods import parse_method

    spec = parse_method(raw)
    criteria_for(raw)  # the scored criteria must be valid too
    return {**raw, **spec.to_dict()}


register_method_check(_check_method)

from evaluation import ocds_awards  # noqa: E402  (installs the awards of open data)

__all__ = ["ocds_awards", "pool_models", "result_models", "room_models"]
