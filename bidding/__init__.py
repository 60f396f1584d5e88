"""Tendering (招标投标): tenders, lots, amendments, Q&A, objections; later sealed bids and opening.

The services and read models other packages may use are re-exported here; import them from
``bidding``, not from the modules inside.
"""

from __future__ import annotations

from flask import Flask

from bidding import models, sealed_models
from bidding.clarifications import (
    amend_tender,
    answer_objection,
    answer_question,
    ask_question,
    raise_objection,
)
from bidding.lifecycle import can_transition, transition
from bidding.policy import RULEBOOK_KEY, rules_for
from bidding.queries import (
    Page,
    get_document,
    get_objection,
    get_question,
    get_tender,
    managed_organisation_ids,
    published_answers,
    search_tenders,
    visible_documents,
)
from bidding.rules import RuleBook, RuleSet
from bidding.sealed_closing import close_tender, is_closed
from bidding.sealed_models import Bid, BidUpload, UploadStatus
from bidding.sealed_queries import closing_of, commitment_openings
from bidding.services import (
    add_document,
    cancel_tender,
    create_tender,
    publish_tender,
    record_download,
    record_refused,
    tender_cancelled,
    tender_failed,
    update_tender,
)
from bidding.submissions import bid_withdrawn, current_bid, withdraw


def init_app(app: Flask, rule_overrides: dict | None = None) -> None:
    """Load the rule book with the regional overrides (refused at start-up when looser than the law)."""
    app.extensions[RULEBOOK_KEY] = RuleBook(region_overrides=rule_overrides or {})


__all__ = [
    "Bid", "BidUpload", "UploadStatus", "bid_withdrawn", "close_tender", "closing_of", "commitment_openings",
    "current_bid", "is_closed", "sealed_models", "withdraw",
    "Page", "RuleBook", "RuleSet", "add_document", "amend_tender", "answer_objection", "answer_question",
    "ask_question", "can_transition", "cancel_tender", "create_tender", "get_document",
    "get_objection", "get_question", "get_tender", "init_app", "managed_organisation_ids", "models",
    "publish_tender", "published_answers", "raise_objection", "record_download", "record_refused", "rules_for", "search_tenders",
    "tender_cancelled", "tender_failed", "transition", "update_tender", "visible_documents",
]
