"""Registration of blueprints, API, error handlers, CLI commands, realtime and tasks."""

from __future__ import annotations

from flask import Flask

import bidding  # noqa: F401  (registers the domain's models)
import core.audit  # noqa: F401
import core.notifications  # noqa: F401
from bidding.ocds_api import bp as ocds_bp
from core.config import Settings
from ebid import errors as error_pages
from ebid.cli_commands import register_cli


def register(app: Flask, settings: Settings) -> None:
    """Attach every domain's doors (views, API, sockets, tasks) to ``app``."""
    error_pages.register(app)
    register_cli(app)
    app.register_blueprint(ocds_bp)
