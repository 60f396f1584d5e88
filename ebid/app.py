"""Application factory: assembles the kernel, the domains and their blueprints."""

from __future__ import annotations

import os
from urllib.parse import urlencode

from flask import Flask, current_app, has_request_context, request
from flask_babel import get_locale

from core.config import Settings
from core.db import db
from core.extensions import babel, csrf, limiter, login_manager
from ebid.app_paths import STATIC_DIR, TEMPLATES_DIR, TRANSLATIONS_DIR
from ebid.wiring import register

LOCALES = ("zh_CN", "en")


def select_locale() -> str:
    """Pick the UI language: ?lang=, then the ``lang`` cookie, then Accept-Language, else zh_CN.

    Outside a request (CLI, tasks, services called in tests) the default locale applies.
    """
    if not has_request_context():
        return current_app.extensions["ebid.settings"].offline_locale
    wanted = request.args.get("lang") or request.cookies.get("lang")
    if wanted in LOCALES:
        return wanted
    return request.accept_languages.best_match(LOCALES, default="zh_CN") if request.accept_languages else "zh_CN"


def current_locale() -> str:
    """The request's locale as one of LOCALES (Babel spells zh_CN as ``zh_Hans_CN``)."""
    locale = get_locale()
    if locale is None:
        return "zh_CN"
    return next((name for name in LOCALES if name.split("_")[0] == locale.language), "zh_CN")


def lang_url(locale: str) -> str:
    """The current page's address with ``?lang=locale`` (other query arguments kept)."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    return request.path + "?" + urlencode([*args, ("lang", locale)])


def create_app(settings: Settings | None = None) -> Flask:
    """Build a configured Flask app; ``settings`` default to the environment."""
    settings = settings or Settings.from_env()
    app = Flask("ebid", template_folder=str(TEMPLATES_DIR), static_folder=str(STATIC_DIR))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings.database_url),
        BABEL_DEFAULT_LOCALE=settings.default_locale,
        BABEL_DEFAULT_TIMEZONE=settings.timezone,
        BABEL_TRANSLATION_DIRECTORIES=str(TRANSLATIONS_DIR),
        TESTING=settings.testing,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=200 * 1024 * 1024,
        RATELIMIT_STORAGE_URI=settings.redis_url or "memory://",
        RATELIMIT_HEADERS_ENABLED=True,
    )
    app.extensions["ebid.settings"] = settings

    db.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)

    @app.context_processor
    def _inject_locale():
        return {"current_locale": current_locale(), "locales": LOCALES, "lang_url": lang_url}

    @app.after_request
    def _remember_locale(response):
        wanted = request.args.get("lang")
        if wanted in LOCALES and request.cookies.get("lang") != wanted:
            response.set_cookie("lang", wanted, max_age=365 * 24 * 3600, samesite="Lax", httponly=True)
        return response

    register(app, settings)
    return app


def _engine_options(url: str) -> dict:
    """Pool per process: ``EBID_DB_POOL_SIZE`` (10) + ``EBID_DB_MAX_OVERFLOW`` (20) connections at most.

    Keep (pool size + overflow) x web processes (+ workers) under PostgreSQL's ``max_connections``.
    """
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30, "check_same_thread": False}}
    return {"pool_pre_ping": True, "pool_size": _env_int("EBID_DB_POOL_SIZE", 10),
            "max_overflow": _env_int("EBID_DB_MAX_OVERFLOW", 20), "pool_timeout": 30}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit():
        raise SystemExit(f"{name}={value!r}: give a whole number of connections, e.g. {name}={default}")
    return int(value)


def settings_of(app: Flask) -> Settings:
    return app.extensions["ebid.settings"]
