"""CLI command groups contributed by the kernel and the domains."""

from __future__ import annotations

from flask import Flask
from flask_migrate import Migrate

from core.db import db
from ebid.app_paths import MIGRATIONS_DIR
from ebid.cli_audit import audit_cli
from ebid.cli_export import export_cli
from ebid.cli_identity import ca_cli, users_cli

migrate = Migrate()


def register_cli(app: Flask) -> None:
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True, compare_type=True)
    app.cli.add_command(audit_cli)
    app.cli.add_command(export_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(ca_cli)
