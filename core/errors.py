"""Domain errors, mapped once to HTTP status and one JSON error shape.

Every error that reaches a person says what was wrong and what to do, in their language: the
message is a lazy gettext string, rendered in the request's locale when the error is shown.
API errors always have the shape ``{"code": ..., "message": ..., "fields": {...}}``.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l


class DomainError(Exception):
    """Base of every error a user may see."""

    status = 400
    code = "error"
    default_message = _l("The request could not be completed.")

    def __init__(self, message: Any = None, *, code: str | None = None,
                 fields: dict[str, Any] | None = None, **params: Any):
        self.message = message if message is not None else self.default_message
        if code:
            self.code = code
        self.fields = fields or {}
        self.params = params
        super().__init__(str(self.message))

    def to_dict(self) -> dict[str, Any]:
        text = str(self.message)
        if self.params:
            text = text % self.params
        return {"code": self.code, "message": text,
                "fields": {k: [str(m) for m in (v if isinstance(v, list | tuple) else [v])]
                           for k, v in self.fields.items()}}


class ValidationFailed(DomainError):
    status = 422
    code = "validation_failed"
    default_message = _l("Some fields are not valid; correct them and try again.")


class NotFound(DomainError):
    status = 404
    code = "not_found"
    default_message = _l("The requested item does not exist.")


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    default_message = _l("You are not allowed to do this.")


class NotAuthenticated(DomainError):
    status = 401
    code = "not_authenticated"
    default_message = _l("Log in first.")


class Conflict(DomainError):
    status = 409
    code = "conflict"
    default_message = _l("Someone else changed this item at the same time; reload it and try again.")


class RuleViolation(DomainError):
    """A legal or procedural rule forbids the action (e.g. a deadline too early)."""

    status = 422
    code = "rule_violation"
