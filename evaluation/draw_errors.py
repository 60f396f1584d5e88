"""Refusals of the expert pool, the drawing (抽取) and the recusal check (回避): what was wrong, what to do."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from core.errors import Forbidden, NotFound, RuleViolation, ValidationFailed


class DrawRefused(RuleViolation):
    """A draw request or a draw step breaks a rule (committee size, supply of experts, status)."""

    code = "draw_refused"
    default_message = _l("The draw cannot go ahead; correct the request and try again.")


class ImportRejected(ValidationFailed):
    """A CSV import of the expert pool with bad lines: nothing was imported; every bad line is listed."""

    code = "import_rejected"

    def __init__(self, problems: list[tuple[int, str]], **kwargs: Any):
        self.problems = problems
        fields = {f"line {line}": [text] for line, text in problems}
        super().__init__(_l("Nothing was imported: %(count)s line(s) must be corrected first (listed below)."),
                         fields=fields, count=len(problems), **kwargs)


class NotYourInvitation(Forbidden):
    code = "not_your_invitation"
    default_message = _l("This invitation is addressed to another expert; log in as the expert it names.")


class NoDrawRequest(NotFound):
    code = "no_draw_request"
    default_message = _l("This tender has no expert draw request yet; a tender manager creates one first.")


class SignInRefused(RuleViolation):
    """Sign-in (签到) or the recusal declaration cannot be accepted as sent."""

    code = "signin_refused"
    default_message = _l("The sign-in could not be accepted; read the message and try again.")
