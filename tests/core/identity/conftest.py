"""Fixtures of the identity tests: a platform CA, CSRs, logging in through the real form."""

from __future__ import annotations

import json
import re

import pytest
from flask import g
from sqlalchemy import select

from core.actor import Actor
from core.audit import AuditEvent
from core.db import db
from core.extensions import limiter
from core.identity import ca as platform_ca
from crypto import keys
from tests.factories import PASSWORD

CA_PASSPHRASE = "ca passphrase for the tests"
SYSTEM = Actor.system(source="test")
FAST_KDF = keys.MIN_SCRYPT_LOG2_N


def csrf_token_of(html: str) -> str | None:
    """The CSRF token of the first form on a page (None when the app does not check CSRF)."""
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or \
        re.search(r'name="csrf_token" value="([^"]+)"', html)
    return match.group(1) if match else None


def login(client, email: str, password: str = PASSWORD, **extra):
    """Log in through the form, as a browser would (with the page's CSRF token)."""
    token = csrf_token_of(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token or "", **extra})


def audit_dump() -> str:
    """Every audit event as one JSON text, to search for secrets."""
    rows = db.session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()
    return json.dumps([{"action": e.action, "actor": e.actor_name, "object": e.object_id, "summary": e.summary}
                       for e in rows], ensure_ascii=False)


def audit_actions() -> list[str]:
    return list(db.session.execute(select(AuditEvent.action).order_by(AuditEvent.seq)).scalars())


@pytest.fixture(autouse=True)
def fresh_g_per_request(app):
    """Give every test request a fresh ``flask.g``, as production does.

    The shared ``app`` fixture keeps an app context pushed for the whole test, and Flask reuses it for
    each test-client request, so ``g`` (Flask-Login's cached user, Flask-WTF's cached CSRF token) would
    otherwise carry over from one request to the next.
    """
    def clear_g() -> None:
        for name in list(vars(g)):
            delattr(g, name)

    app.before_request_funcs.setdefault(None, []).insert(0, clear_g)


@pytest.fixture
def rate_limited(app):
    """Turn the rate limits on (they are off in the test app) with empty counters."""
    app.config["RATELIMIT_ENABLED"] = True
    limiter.reset()
    yield app
    limiter.reset()
    app.config["RATELIMIT_ENABLED"] = False


@pytest.fixture
def ca(app, settings):
    """A platform CA in the test's key folder (cheap key encryption, to keep the suite fast)."""
    authority = platform_ca.init_ca(SYSTEM, settings.keys_dir, CA_PASSPHRASE, kdf_log2_n=FAST_KDF)
    db.session.commit()
    return authority


@pytest.fixture
def holder():
    """A key holder's side: their own key pair and CSR; the key never goes to the platform."""
    class Holder:
        def __init__(self):
            self.key = keys.generate_private_key()

        def csr(self, common_name: str = "Holder", **kwargs) -> bytes:
            return keys.make_csr(self.key, common_name, **kwargs)

    return Holder
