"""Database: SQLAlchemy 2 declarative base, naming convention, UTC datetimes, after-commit hooks.

One transaction per request or task: views and tasks commit, services only flush. Side effects
(socket pushes, task enqueues, outbound HTTP) are registered with :func:`after_commit` and run
only once the transaction has committed; a rollback drops them.
"""

from __future__ import annotations

import decimal
import enum
from collections.abc import Callable
from datetime import UTC, datetime

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, Enum, MetaData, Numeric, Select, event, update
from sqlalchemy.engine import Engine, ScalarResult
from sqlalchemy.orm import DeclarativeBase, Session, registry
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """An aware UTC datetime on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware UTC datetime is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Money = Numeric(18, 2, asdecimal=True)
"""Money column type: ``Decimal`` with 2 places (fen), never float."""


class Base(DeclarativeBase):
    registry = registry(metadata=MetaData(naming_convention=NAMING_CONVENTION),
                        type_annotation_map={datetime: UTCDateTime(), decimal.Decimal: Money})


db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})

_PENDING_KEY = "ebid_after_commit"


def after_commit(callback: Callable[[], None], session: Session | None = None) -> None:
    """Run ``callback`` after the current transaction commits; drop it on rollback."""
    session = session or db.session()
    session.info.setdefault(_PENDING_KEY, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    callbacks = session.info.pop(_PENDING_KEY, [])
    for callback in callbacks:
        callback()


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_rollback(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_PENDING_KEY, None)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """SQLite: enforce foreign keys, use WAL so readers never block the writer."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


_GUARDS: list[Callable[[Engine], None]] = []


def database_guard(func: Callable[[Engine], None]) -> Callable[[Engine], None]:
    """Register DDL that models cannot express (e.g. append-only triggers); migrations call it too."""
    _GUARDS.append(func)
    return func


def install_database_guards(engine: Engine) -> None:
    """Install every registered guard (idempotent) on ``engine``."""
    for guard in _GUARDS:
        guard(engine)


def commit_keeping_loaded() -> None:
    """Commit without expiring what the session holds: answer from the objects as just written.

    Only for a request's last commit, whose objects are not read for any later decision: their
    attributes are not refreshed from the database afterwards.
    """
    session = db.session()
    keep = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = keep


def enum_type(enum_cls: type[enum.Enum], length: int = 32) -> Enum:
    """A portable enum column stored as its lower-case value (VARCHAR plus CHECK), not the member name."""
    return Enum(enum_cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e])


def locked_scalars(stmt: Select, model: type, *criteria, skip_locked: bool = False) -> ScalarResult:
    """Run ``stmt`` (a select of ``model``) holding the write lock on its rows until the transaction ends.

    PostgreSQL: ``FOR UPDATE`` (``SKIP LOCKED`` when asked: rows other transactions hold are passed over).
    SQLite has no row locks: a no-op UPDATE of the ``model`` rows matching ``criteria`` takes the database's
    write lock first, so a second writer waits here; take it first in a fresh transaction. The rows are read
    again from the database (``populate_existing``), not from the session.
    """
    stmt = stmt.execution_options(populate_existing=True)
    if db.session.get_bind().dialect.name != "sqlite":
        return db.session.scalars(stmt.with_for_update(skip_locked=skip_locked))
    table = model.__table__
    key = next(iter(table.primary_key.columns))
    db.session.execute(update(table).where(*criteria).values({key.name: key}))
    return db.session.scalars(stmt)
