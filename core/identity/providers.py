"""Identity providers (身份认证方式): the ways a person proves who they are, behind one interface.

A provider has a ``name``, a ``display_name``, ``begin(...)`` returning a :class:`Challenge` and
``complete(...)`` returning an :class:`IdentityAssertion` bound to a person and, where the proof speaks
for an organisation, that organisation's USCC. Providers write the audit trail and flush; the view that
calls them commits (also after a failure, so refused attempts stay on the record) and turns the assertion
into a session (the login page) or a short-lived API token (``POST /api/auth/certificate``).

Built in: ``password`` and ``certificate`` (a key certified by the platform CA signs a server nonce).

How an electronic business licence (电子营业执照) provider plugs in beside them
---------------------------------------------------------------------------
The licence is held in the SAMR app; the platform never sees its key. A provider for it would:

1. ``begin(source=...)`` ask the licence service for a login QR code / session id bound to a fresh
   nonce, store the nonce as an :class:`~core.identity.models.AuthChallenge` (provider "e_license") and
   return a :class:`Challenge` whose ``data`` carries the QR payload for the page to show;
2. ``complete(nonce=..., ...)`` take the licence service's callback or poll result, verify its signature
   with the service's published certificate (pinned in configuration, not fetched at run time), check the
   nonce and expiry exactly as :class:`CertificateProvider` does, read the USCC and the authorised person
   from the signed result, look the person up by the identity the licence names (and their membership of
   the organisation with that USCC), and return ``IdentityAssertion(provider="e_license", person_id=...,
   organisation_uscc=uscc, evidence={...})``;
3. register itself with ``register_provider(ELicenseProvider(...))`` from the app's wiring, when the
   operator has a contract and credentials for the licence service.

Nothing else changes: the login page lists ``providers()``, the API endpoints dispatch by name, and actors
are built from the assertion as for any other provider. No such provider ships here, since it needs the
licence service's real interface and keys.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select

from core.actor import Actor
from core.audit import record
from core.clock import as_utc, now
from core.db import db
from core.errors import NotAuthenticated
from core.identity.ca import CertificateRefused, verify_certificate
from core.identity.models import AuthChallenge, Certificate, Person
from core.identity.passwords import hash_password, needs_rehash, verify_password
from core.identity.services import person_by_email
from crypto import keys

CHALLENGE_LIFETIME = timedelta(minutes=5)


class AuthenticationFailed(NotAuthenticated):
    """A login attempt was refused; the message is safe to show (it never tells whether an e-mail exists)."""

    code = "authentication_failed"


@dataclass(frozen=True)
class Challenge:
    """What the client must answer: a single-use nonce (if the provider needs one) and provider data."""

    provider: str
    nonce: str | None = None
    expires_at: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IdentityAssertion:
    """Who has proven themself, by which provider, for which organisation (USCC) if any."""

    provider: str
    person_id: int
    organisation_uscc: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


class IdentityProvider(ABC):
    """One way of proving identity; see the module docstring."""

    name: str
    display_name: Any

    @abstractmethod
    def begin(self, *, source: str | None = None, **params: Any) -> Challenge:
        """Start an attempt; return what the client must answer."""

    @abstractmethod
    def complete(self, *, source: str | None = None, **response: Any) -> IdentityAssertion:
        """Check the client's answer; return the assertion or raise :class:`AuthenticationFailed`."""


_REGISTRY: dict[str, IdentityProvider] = {}


def register_provider(provider: IdentityProvider) -> IdentityProvider:
    """Make ``provider`` available under its name (a later registration replaces an earlier one)."""
    _REGISTRY[provider.name] = provider
    return provider


def get_provider(name: str) -> IdentityProvider:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise AuthenticationFailed(_l("Unknown login method '%(name)s'.", name=name),
                                   code="unknown_provider") from None


def providers() -> list[IdentityProvider]:
    return list(_REGISTRY.values())


def _anonymous(source: str | None, name: str = "anonymous") -> Actor:
    return Actor(person_id=None, name=name, role=None, source=source)


def _person_actor(person: Person, source: str | None) -> Actor:
    return Actor(person_id=person.id, name=person.name, source=source)


class PasswordProvider(IdentityProvider):
    """E-mail and password (argon2id); the hash is upgraded when the parameters changed."""

    name = "password"
    display_name = _l("E-mail and password")
    _dummy_hash: str | None = None

    def begin(self, *, source: str | None = None, **params: Any) -> Challenge:
        return Challenge(provider=self.name, data={"fields": ["email", "password"]})

    def _refuse(self, email: str, reason: str, person: Person | None, source: str | None, message=None):
        record(_person_actor(person, source) if person else _anonymous(source), "login_failed", "person",
               person.id if person else None, {"provider": self.name, "email": email, "reason": reason})
        return AuthenticationFailed(message or _l("Wrong e-mail or password."))

    def complete(self, *, source: str | None = None, email: str = "", password: str = "",
                 **response: Any) -> IdentityAssertion:
        email = (email or "").strip().lower()
        person = person_by_email(email) if email else None
        if person is None or not person.password_hash:
            # Spend the same time as a real check, so response times do not tell which e-mails exist.
            verify_password(self._dummy(), password)
            raise self._refuse(email, "unknown_email" if person is None else "no_password", person, source)
        if not verify_password(person.password_hash, password):
            raise self._refuse(email, "wrong_password", person, source)
        if not person.is_enabled:
            raise self._refuse(email, "disabled", person, source,
                               _l("This account is disabled; contact the platform administrator."))
        if needs_rehash(person.password_hash):
            person.password_hash = hash_password(password)
        record(_person_actor(person, source), "login", "person", person.id, {"provider": self.name})
        return IdentityAssertion(provider=self.name, person_id=person.id)

    def _dummy(self) -> str:
        if PasswordProvider._dummy_hash is None or needs_rehash(PasswordProvider._dummy_hash):
            PasswordProvider._dummy_hash = hash_password(secrets.token_urlsafe(16))
        return PasswordProvider._dummy_hash


def challenge_message(nonce: str) -> bytes:
    """The exact bytes a client signs to answer a certificate-login challenge."""
    return f"ebid-certificate-login:v1:{nonce}".encode()


class CertificateProvider(IdentityProvider):
    """Certificate login (CA数字证书登录): the holder signs a server nonce with the certified key.

    The certificate must chain to the platform CA, be valid now, not be revoked and be on the platform's
    record; it maps to its person, and for an organisation certificate to the person who holds it (still a
    member of the organisation) and the organisation's USCC.
    """

    name = "certificate"
    display_name = _l("Digital certificate")

    def begin(self, *, source: str | None = None, **params: Any) -> Challenge:
        at = now()
        db.session.execute(delete(AuthChallenge).where(AuthChallenge.expires_at < at - timedelta(days=1)))
        nonce = secrets.token_urlsafe(32)
        row = AuthChallenge(provider=self.name, nonce=nonce, expires_at=at + CHALLENGE_LIFETIME, source=source)
        db.session.add(row)
        db.session.flush()
        return Challenge(provider=self.name, nonce=nonce, expires_at=row.expires_at,
                         data={"sign": challenge_message(nonce).decode(), "algorithm": "ECDSA-SHA256"})

    def _refuse(self, reason: str, message, source: str | None, certificate: Certificate | None = None):
        person = certificate.person if certificate else None
        record(_person_actor(person, source) if person else _anonymous(source), "login_failed", "certificate",
               certificate.serial if certificate else None, {"provider": self.name, "reason": reason})
        return AuthenticationFailed(message, code=reason)

    def _take_challenge(self, nonce: str, source: str | None) -> AuthChallenge:
        challenge = db.session.execute(
            select(AuthChallenge).where(AuthChallenge.nonce == (nonce or ""), AuthChallenge.provider == self.name)
            .with_for_update()).scalar()
        if challenge is None or challenge.used_at is not None:
            raise self._refuse("challenge_unknown", _l("The login challenge is unknown or was already used; "
                                                       "ask for a new one."), source)
        if as_utc(challenge.expires_at) <= now():
            raise self._refuse("challenge_expired", _l("The login challenge has expired; ask for a new one."), source)
        challenge.used_at = now()
        return challenge

    def complete(self, *, source: str | None = None, nonce: str = "", certificate: str = "",
                 signature: str = "", **response: Any) -> IdentityAssertion:
        self._take_challenge(nonce, source)
        try:
            row = verify_certificate(certificate)
        except CertificateRefused as exc:
            raise self._refuse(exc.code, exc.message, source) from None
        try:
            signature_bytes = base64.b64decode(signature or "", validate=True)
        except (binascii.Error, ValueError):
            signature_bytes = b""
        public_key = x509.load_pem_x509_certificate(row.pem.encode()).public_key()
        if not signature_bytes or not keys.verify(public_key, signature_bytes, challenge_message(nonce)):
            raise self._refuse("bad_signature", _l("The signature over the challenge does not verify with this "
                                                   "certificate's key."), source, row)
        person = row.person
        if person is None:
            raise self._refuse("no_holder", _l("This organisation certificate is not assigned to a person, so it "
                                               "cannot be used to log in."), source, row)
        if not person.is_enabled:
            raise self._refuse("disabled", _l("This account is disabled; contact the platform administrator."),
                               source, row)
        uscc = None
        if row.organisation is not None:
            if not any(g.organisation_id == row.organisation_id for g in person.grants):
                raise self._refuse("not_a_member", _l("You are not a member of %(organisation)s any more.",
                                                      organisation=row.organisation.name), source, row)
            uscc = row.organisation.uscc
        record(_person_actor(person, source), "login", "person", person.id,
               {"provider": self.name, "certificate_serial": row.serial, "organisation_uscc": uscc})
        return IdentityAssertion(provider=self.name, person_id=person.id, organisation_uscc=uscc,
                                 evidence={"certificate_serial": row.serial,
                                           "fingerprint_sha256": row.fingerprint_sha256})


register_provider(PasswordProvider())
register_provider(CertificateProvider())
