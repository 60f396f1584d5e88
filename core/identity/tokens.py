"""Personal API tokens (``Authorization: Bearer ebid_<43 characters>``).

The plaintext is shown once, when the token is made; the database keeps only its SHA-256 and the
first characters (the prefix) so the holder can tell their tokens apart.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from core.actor import Actor
from core.audit import record
from core.clock import as_utc, now
from core.db import db
from core.errors import NotAuthenticated, ValidationFailed
from core.identity.access import require_self_or_admin
from core.identity.models import ApiToken, Person, RoleGrant

TOKEN_PREFIX = "ebid_"
PREFIX_SHOWN = 12
TOKEN_RE = re.compile(r"^ebid_[A-Za-z0-9_-]{43}$")
LAST_USED_RESOLUTION = timedelta(minutes=1)  # last_used_at is written at most this often


class InvalidToken(NotAuthenticated):
    """An API token that cannot authenticate (malformed, unknown, revoked, expired, account disabled)."""

    code = "invalid_token"


def hash_token(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def issue_api_token(actor: Actor, person: Person, name: str,
                    expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """Make a token for ``person``; return the row and the plaintext (shown once, never stored)."""
    require_self_or_admin(actor, person)
    name = (name or "").strip()
    if not name or len(name) > 100:
        message = _l("Give the token a name of 1 to 100 characters, e.g. the program that will use it.")
        raise ValidationFailed(message, fields={"name": [message]})
    if expires_at is not None and as_utc(expires_at) <= now():
        message = _l("The expiry time must be in the future.")
        raise ValidationFailed(message, fields={"expires_at": [message]})
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(person=person, name=name, prefix=plaintext[:PREFIX_SHOWN], token_hash=hash_token(plaintext),
                     expires_at=as_utc(expires_at) if expires_at else None)
    db.session.add(token)
    db.session.flush()
    record(actor, "api_token_issued", "api_token", token.id,
           {"person_id": person.id, "name": name, "prefix": token.prefix,
            "expires_at": token.expires_at.isoformat() if token.expires_at else None})
    return token, plaintext


def revoke_api_token(actor: Actor, token: ApiToken) -> ApiToken:
    """Revoke ``token`` at once; revoking twice changes nothing."""
    require_self_or_admin(actor, token.person)
    if token.revoked_at is None:
        token.revoked_at = now()
        db.session.flush()
        record(actor, "api_token_revoked", "api_token", token.id,
               {"person_id": token.person_id, "name": token.name, "prefix": token.prefix})
    return token


def authenticate_api_token(plaintext: str, *, touch: bool = True) -> ApiToken:
    """Return the active token for ``plaintext`` or raise :class:`InvalidToken` saying why it was refused.

    With ``touch`` the token's ``last_used_at`` is brought up to date (pending in the session, not flushed).
    """
    if not TOKEN_RE.match(plaintext or ""):
        raise InvalidToken(_l("The API token is malformed; send 'Authorization: Bearer ebid_...' with the whole "
                              "token as it was shown when it was made."), code="token_malformed")
    # the person, their roles and organisations come along: every API request needs them to build its actor
    token = db.session.execute(select(ApiToken).where(ApiToken.token_hash == hash_token(plaintext)).options(
        joinedload(ApiToken.person).joinedload(Person.grants).joinedload(RoleGrant.organisation))).unique().scalar()
    if token is None:
        raise InvalidToken(_l("The API token is not known; it may have been deleted. Make a new one on your "
                              "account page."), code="token_unknown")
    state = token.state()
    if state == "revoked":
        raise InvalidToken(_l("The API token was revoked; make a new one on your account page."),
                           code="token_revoked")
    if state == "expired":
        raise InvalidToken(_l("The API token has expired; make a new one on your account page."),
                           code="token_expired")
    if not token.person.is_enabled:
        raise InvalidToken(_l("This account is disabled; contact the platform administrator."),
                           code="account_disabled")
    at = now()
    if touch and (token.last_used_at is None or at - as_utc(token.last_used_at) >= LAST_USED_RESOLUTION):
        token.last_used_at = at  # pending: the caller commits it
    return token


def bearer_credentials(authorization: str | None) -> str | None:
    """Return the credentials of an ``Authorization: Bearer ...`` header, or None for any other header."""
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credentials.strip()
