"""The Alembic migrations build exactly the schema the models declare, guards included."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import create_engine, inspect, text

from core.config import Settings
from core.db import db
from ebid.app import create_app
from ebid.app_paths import MIGRATIONS_DIR


def test_upgrade_matches_models_and_installs_guards(tmp_path):
    url = f"sqlite:///{tmp_path / 'migrated.sqlite3'}"
    app = create_app(Settings(data_dir=tmp_path, database_url=url, secret_key="x", testing=True))
    with app.app_context():
        upgrade(directory=str(MIGRATIONS_DIR))
        engine = create_engine(url)
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata)
            triggers = {row[0] for row in conn.execute(text("SELECT name FROM sqlite_master WHERE type='trigger'"))}
        assert diffs == [], f"models and migrations differ; run `ebid db migrate`: {diffs}"
        assert set(inspect(engine).get_table_names()) >= {t.name for t in db.metadata.sorted_tables}
        assert {"audit_events_no_update", "audit_events_no_delete"} <= triggers
        engine.dispose()
