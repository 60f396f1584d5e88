"""Attach identity to the app: Flask-Login loaders, API-token authentication, CSRF, blueprints.

CSRF stays on for every cookie-authenticated request (forms and JSON alike: JSON clients send the token
in ``X-CSRFToken``). A request that carries ``Authorization: Bearer ebid_...`` is authenticated by that
token alone, whatever cookie came with it, and skips CSRF: a browser never adds that header on its own,
so a cross-site forgery cannot carry one. A bearer header that does not authenticate is refused (401)
rather than ignored.
"""

from __future__ import annotations

from flask import Flask, current_app, flash, g, redirect, request, url_for
from flask_babel import lazy_gettext as _l

from core.db import db
from core.errors import NotAuthenticated
from core.extensions import csrf, login_manager
from core.identity.models import Person
from core.identity.tokens import InvalidToken, authenticate_api_token, bearer_credentials
from core.identity.views import api, bp


def load_person(user_id: str) -> Person | None:
    """Flask-Login user_loader: the person of a session cookie (None if unknown or malformed)."""
    try:
        return db.session.get(Person, int(user_id))
    except (TypeError, ValueError):
        return None


def person_from_request(req) -> Person | None:
    """Flask-Login request_loader: the person of a valid bearer token (also for Socket.IO handshakes)."""
    credentials = bearer_credentials(req.headers.get("Authorization"))
    if credentials is None:
        return None
    try:
        return authenticate_api_token(credentials, touch=False).person
    except InvalidToken:
        return None


def authenticate_request() -> None:
    """before_request: bearer token authentication, else CSRF protection for unsafe methods."""
    credentials = bearer_credentials(request.headers.get("Authorization"))
    if credentials is None:
        if current_app.config.get("WTF_CSRF_ENABLED", True):
            csrf.protect(apply_exemptions=True)
        return
    token = authenticate_api_token(credentials)  # raises InvalidToken (401) saying why
    if token in db.session.dirty:
        db.session.commit()  # last_used_at (at most once a minute); nothing else is pending this early
    g.api_token = token
    g.csrf_valid = True  # Flask-WTF's per-request mark: forms of a token request need no CSRF token either
    login_manager._update_request_context_with_user(token.person)


def unauthorized():
    """Not logged in: 401 for the API and token clients, the login page (with ``next``) for people."""
    if request.path.startswith("/api/") or request.headers.get("Authorization"):
        raise NotAuthenticated()
    flash(login_manager.login_message, "info")
    target = request.full_path if request.query_string else request.path
    return redirect(url_for("identity.login", next=target))


def init_app(app: Flask) -> None:
    """Wire identity into ``app`` (called once by the shell's wiring)."""
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # authenticate_request decides, per request
    login_manager.login_view = "identity.login"
    login_manager.login_message = _l("Log in to see this page.")
    login_manager.user_loader(load_person)
    login_manager.request_loader(person_from_request)
    login_manager.unauthorized_handler(unauthorized)
    app.before_request(authenticate_request)
    app.register_blueprint(bp)
    app.register_blueprint(api)
