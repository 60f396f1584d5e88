"""``ebid export``: open data files, e.g. ``ebid export ocds --validate --out ocds.json``."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from flask_babel import force_locale

from bidding.ocds import to_json
from bidding.ocds_api import export_package
from bidding.ocds_validation import validate_package
from core.config import Settings
from core.errors import NotFound
from core.storage import write_atomically

MAX_ERRORS_SHOWN = 20

export_cli = AppGroup("export", help="Export open data.")


def _settings() -> Settings:
    # Not ebid.app.settings_of: ebid.app imports the wiring that imports this module.
    return current_app.extensions["ebid.settings"]


@export_cli.command("ocds")
@click.option("--tender", "tender_id", type=int, help="Id of one published tender (default: all of them).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (default: standard output).")
@click.option("--validate", is_flag=True, help="Validate against OCDS 1.1 first; write nothing if invalid.")
def export_ocds(tender_id: int | None, out: Path | None, validate: bool) -> None:
    """Write an OCDS 1.1 release package of the published tenders (drafts are never exported)."""
    # The CLI speaks English, like the other ebid commands (domain errors render their message on creation).
    with force_locale("en"):
        try:
            package = export_package(_settings(), tender_id=tender_id)
        except NotFound as exc:
            raise click.ClickException(exc.to_dict()["message"]) from exc
    if validate:
        errors = validate_package(package)
        if errors:
            for error in errors[:MAX_ERRORS_SHOWN]:
                click.echo(error, err=True)
            if len(errors) > MAX_ERRORS_SHOWN:
                click.echo(f"... and {len(errors) - MAX_ERRORS_SHOWN} more", err=True)
            raise click.ClickException(f"the package is not valid OCDS 1.1 ({len(errors)} errors); nothing written")
    text = to_json(package)
    if out is None:
        click.echo(text, nl=False)
        return
    write_atomically(out, lambda handle: handle.write(text.encode("utf-8")))
    releases = len(package["releases"])
    click.echo(f"wrote {releases} release(s) to {out}" + (" (valid OCDS 1.1)" if validate else ""), err=True)
