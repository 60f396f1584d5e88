"""Rate limit of the public letter verification (保函验真限流): the page and the API share one budget.

Verification is public and costly (a PDF parsed, a PAdES signature validated, on request the issuer's
registry asked over HTTP), and number + code pairs must not be guessed in bulk. Each client address
gets ``EBID_GUARANTEE_VERIFY_LIMIT`` verifications (app config or environment; default 20 a minute and
300 an hour, in Flask-Limiter's notation ``"20 per minute;300 per hour"``), counted by the
house limiter (Redis when configured, as for the login). Showing the empty form costs nothing. Over the
limit the answer is 429 with a message saying how long to wait.
"""

from __future__ import annotations

import os
import time

from flask import current_app, request
from flask_babel import lazy_gettext as _l
from flask_limiter import RequestLimit

from core.errors import DomainError
from core.extensions import limiter
from core.identity.access import source_address
from core.identity.views import limits_off

DEFAULT_VERIFY_LIMIT = "20 per minute;300 per hour"
CONFIG_KEY = "EBID_GUARANTEE_VERIFY_LIMIT"


class TooManyVerifications(DomainError):
    status = 429
    code = "too_many_verifications"
    default_message = _l("Too many letter verifications from your address; wait %(seconds)s seconds and try "
                         "again. Tenderers find the letters of their bids checked on the tender's guarantee page.")

    def __init__(self, seconds: int):
        super().__init__(seconds=seconds)


def verify_limit_value() -> str:
    """The app's setting, else the environment variable of the same name, else the default."""
    return current_app.config.get(CONFIG_KEY) or os.environ.get(CONFIG_KEY) or DEFAULT_VERIFY_LIMIT


def _exempt() -> bool:
    """No limit while limits are off, nor for the empty form (nothing is verified)."""
    if limits_off():
        return True
    return request.method == "GET" and not request.args.get("no") and not request.args.get("code")


def _breach(limit: RequestLimit) -> None:
    """Answer with the house error shape (page or JSON), saying how long to wait."""
    raise TooManyVerifications(max(1, int(limit.reset_at - time.time())))


verification_limit = limiter.shared_limit(verify_limit_value, scope="guarantee_verification",
                                          key_func=source_address, exempt_when=_exempt, on_breach=_breach)
"""Decorator for every verification door (page GET and POST, API GET and POST)."""
