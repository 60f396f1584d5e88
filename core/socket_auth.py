"""Who is on a Socket.IO connection: the logged-in person (session cookie) or an API token's holder.

The domain namespaces (the opening hall, the scoring room) authenticate a connection once, on
``connect``, and read the person again on every event, so a disabled account stops at its next event.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_login import current_user

from core.db import db
from core.errors import NotAuthenticated
from core.identity.models import Person
from core.identity.tokens import InvalidToken, authenticate_api_token


def connecting_person(auth: Any, refusal: Any) -> Person:
    """The person connecting with ``auth`` (``{"token": "ebid_..."}``) or the session; else refuse.

    Raises ConnectionRefusedError (Socket.IO's refusal) with ``refusal``, the place-specific message,
    or the token's own error.
    """
    token = auth.get("token") if isinstance(auth, dict) else None
    person: Person | None = None
    try:
        if token:
            person = authenticate_api_token(str(token), touch=False).person
        elif current_user and current_user.is_authenticated:
            person = current_user._get_current_object()
    except InvalidToken as exc:
        raise ConnectionRefusedError(exc.to_dict()) from None
    if person is None or not person.is_enabled:
        raise ConnectionRefusedError(NotAuthenticated(refusal).to_dict())
    return person


def connected_person(person_id: int | None) -> Person:
    """The person a connection was authenticated as, read again; refuse when gone or disabled since."""
    person = db.session.get(Person, person_id) if person_id is not None else None
    if person is None or not person.is_enabled:
        raise NotAuthenticated(_l("Your session ended; log in again."))
    return person
