"""Tendering (招标投标): tenders, lots, amendments, Q&A, objections; later sealed bids and opening."""

from bidding import models

__all__ = ["models"]
