"""Tendering errors, each mapped once (via core.errors) to an HTTP status and the one error shape."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask_babel import lazy_gettext as _l

from core.errors import Forbidden, RuleViolation, ValidationFailed


class RulesViolated(RuleViolation):
    """One or more statutory rules are broken; ``fields`` says which field breaks which rule."""

    code = "rule_violation"
    default_message = _l("The tender does not meet the legal time and price rules; correct the fields listed.")

    def __init__(self, violations: Iterable[Any], message: Any = None):
        self.violations = list(violations)
        fields: dict[str, list[Any]] = {}
        for v in self.violations:
            fields.setdefault(v.field, []).append(v)
        single = len(self.violations) == 1
        if single and message is None:
            message = self.violations[0]  # rendered lazily: the rule itself says what to fix
        super().__init__(message, code=self.violations[0].code if single else None, fields=fields)


class TransitionRefused(RuleViolation):
    code = "transition_refused"
    default_message = _l("This step is not possible in the tender's current state.")


class NotEditable(RuleViolation):
    code = "use_amendment"
    default_message = _l("The tender is already published; change it by publishing an amendment (澄清/修改).")


class DeadlinePassed(RuleViolation):
    code = "deadline_passed"
    default_message = _l("The deadline for this has passed.")


class NotTenderManager(Forbidden):
    code = "not_tender_manager"
    default_message = _l("Only staff of this tender's tenderer or agency may do this; act for that organisation.")


class NotABidder(Forbidden):
    code = "bidder_required"
    default_message = _l("Only bidders acting for their organisation may do this.")


class InvalidInput(ValidationFailed):
    """Input the schema accepted but the domain cannot (empty text after trimming, unknown ids)."""
