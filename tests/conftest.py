"""Test fixtures: a fresh app and schema per test, on SQLite or on PostgreSQL + Redis.

Set ``EBID_TEST_DATABASE_URL`` (and ``EBID_TEST_REDIS_URL``) to run the same suite on PostgreSQL and
Redis. On SQLite each test gets a new database file; on PostgreSQL the schema is created once per
session and every table is truncated after each test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from core.clock import clock
from core.config import Settings, normalize_database_url
from core.db import db
from ebid.app import create_app

TEST_DB_URL = os.environ.get("EBID_TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("EBID_TEST_REDIS_URL")
ON_POSTGRES = bool(TEST_DB_URL and TEST_DB_URL.startswith("postgres"))
# pytest-xdist: each worker (gw0, gw1, ...) gets its own PostgreSQL database and Redis database
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")


def _worker_index() -> int:
    return int(XDIST_WORKER[2:]) if XDIST_WORKER and XDIST_WORKER[2:].isdigit() else 0


def _worker_database_url(url: str) -> str:
    """``url`` itself, or for xdist worker n a sibling database ``<name>_gwn``, created when missing."""
    if not XDIST_WORKER:
        return url
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    base = make_url(normalize_database_url(url))
    name = f"{base.database}_{XDIST_WORKER}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def _worker_redis_url(url: str | None) -> str | None:
    """``url``, or for xdist worker n the Redis database n below it (wrapping within 0..15)."""
    if not url or not XDIST_WORKER:
        return url
    head, _, number = url.rpartition("/")
    return f"{head}/{(int(number or 0) - _worker_index()) % 16}" if number.isdigit() else url


TEST_REDIS_URL = _worker_redis_url(TEST_REDIS_URL)

pytest_plugins = ["tests.factories"]


def pytest_collection_modifyitems(config, items):
    skip_pg = pytest.mark.skip(reason="needs EBID_TEST_DATABASE_URL pointing at PostgreSQL")
    for item in items:
        if "postgres" in item.keywords and not ON_POSTGRES:
            item.add_marker(skip_pg)


def _schema_ready(app) -> None:
    from core.db import install_database_guards

    with app.app_context():
        db.create_all()
        install_database_guards(db.engine)


@pytest.fixture(scope="session")
def _pg_schema(tmp_path_factory):
    """Create the PostgreSQL schema once per session (drop leftovers from an earlier run first)."""
    if not ON_POSTGRES:
        return None
    settings = Settings(data_dir=tmp_path_factory.mktemp("pgdata"),
                        database_url=normalize_database_url(_worker_database_url(TEST_DB_URL)),
                        redis_url=TEST_REDIS_URL, secret_key="test-secret", testing=True)
    app = create_app(settings)
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    _schema_ready(app)
    return settings


@pytest.fixture
def settings(tmp_path: Path, _pg_schema) -> Settings:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    url = _pg_schema.database_url if ON_POSTGRES else f"sqlite:///{data_dir / 'test.sqlite3'}"
    # messages rendered outside a request (services called directly) in English, so tests read them
    return Settings(data_dir=data_dir, database_url=url, redis_url=TEST_REDIS_URL,
                    secret_key="test-secret", testing=True, offline_locale="en")


class FreshContextClient(FlaskClient):
    """Each request in its own app context, as in production.

    The ``app`` fixture keeps one app context open for the whole test; Flask would reuse it for every
    test-client request, so ``g`` (the logged-in user, the cached locale, the CSRF token) and the
    database session would leak from one request to the next.

    Requests say ``Accept-Language: en`` unless a test sets its own, so assertions can read English;
    tests of the default language remove it (``client.environ_base.pop("HTTP_ACCEPT_LANGUAGE")``).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.environ_base.setdefault("HTTP_ACCEPT_LANGUAGE", "en")

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def app(settings: Settings):
    app = create_app(settings)
    app.test_client_class = FreshContextClient
    app.config.update(WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=False)
    if not ON_POSTGRES:
        _schema_ready(app)
    clock.reset()
    with app.app_context():
        yield app
        db.session.remove()
        if ON_POSTGRES:
            tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
            with db.engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        db.engine.dispose()
    clock.reset()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def csrf_app(app):
    """The app with CSRF protection on, as in production."""
    app.config["WTF_CSRF_ENABLED"] = True
    return app
