"""Evaluation (评标): expert pool, drawing, committees, scoring rooms, methods, reports, publicity."""

from __future__ import annotations

from evaluation import pool_models, room_models

__all__ = ["pool_models", "room_models"]
