"""Server-rendered forms over domain services (表单): commit on success, show a refusal beside the form.

Every form view of the domains follows one rule: run the service, commit; on a domain refusal roll back
everything (nothing stored changes) and render the page again with the message and the per-field
messages; access refusals (401/403) are not form errors and go to the error page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from core.db import db
from core.errors import DomainError, Forbidden

T = TypeVar("T")
# what a refused form shows: the message, the messages per field, the HTTP status
FormRefusal = tuple[str, dict[str, list[str]], int]


def form_error(exc: DomainError) -> tuple[str, dict[str, list[str]]]:
    """A refused form's message and per-field messages, in the reader's language."""
    data = exc.to_dict()
    return data["message"], data["fields"]


def refusal(exc: DomainError) -> bool:
    """Access refusals go to the error page (401/403); everything else is shown beside the form."""
    return isinstance(exc, Forbidden) or exc.status in (401, 403)


def commit_form(action: Callable[[], T]) -> tuple[T | None, FormRefusal | None]:
    """Run ``action`` and commit: ``(result, None)``; a form refusal rolls back: ``(None, refusal)``."""
    try:
        result = action()
        db.session.commit()
    except DomainError as exc:
        if refusal(exc):
            raise
        db.session.rollback()
        message, fields = form_error(exc)
        return None, (message, fields, exc.status)
    return result, None


def flash_and_redirect(refusal: FormRefusal | None, success: str, target: str):
    """After a form's POST: flash the refusal (with its per-field messages) or ``success``; 303 to ``target``."""
    from flask import flash, redirect

    if refusal is not None:
        flash(refusal[0] + "".join(f" {k}: {' '.join(v)}" for k, v in refusal[1].items()), "error")
    else:
        flash(success, "success")
    return redirect(target, code=303)
