"""CLI command groups contributed by the kernel and the domains."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from flask_migrate import Migrate

from bidding.sealed_cli import bids_cli
from core.db import db
from core.realtime import run_server
from ebid.app_paths import MIGRATIONS_DIR
from ebid.cli_audit import audit_cli
from ebid.cli_evaluation import evaluation_cli
from ebid.cli_export import export_cli
from ebid.cli_guarantees import guarantees_cli
from ebid.cli_identity import ca_cli, users_cli
from ebid.cli_issuer import issuer_sim_cli
from ebid.client.cli import client_cli
from ebid.demo import demo_command
from supervision.cli import supervision_cli

migrate = Migrate()


def register_cli(app: Flask) -> None:
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True, compare_type=True)
    app.cli.add_command(audit_cli)
    app.cli.add_command(supervision_cli)  # the complete file of a tender: export and offline verification
    app.cli.add_command(bids_cli)
    app.cli.add_command(export_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(ca_cli)
    app.cli.add_command(demo_command)
    app.cli.add_command(guarantees_cli)
    app.cli.add_command(serve_command)
    app.cli.add_command(issuer_sim_cli)
    app.cli.add_command(client_cli)
    app.cli.add_command(evaluation_cli)



@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@with_appcontext
def serve_command(host: str, port: int) -> None:
    """Serve the site with Socket.IO (one process; use gunicorn behind a proxy in production)."""
    run_server(current_app._get_current_object(), host=host, port=port)
