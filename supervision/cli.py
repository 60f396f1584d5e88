"""``ebid supervision ...``: export a tender's complete file (一项一档) and verify such an archive offline.

``export-archive`` needs the application and its database; ``verify-archive`` needs neither (it runs
without an application context and never touches a database), so an auditor can check a copy anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import AppGroup, with_appcontext
from flask_babel import force_locale

from core.db import db
from core.errors import NotFound
from supervision.archive import export_archive, find_tender
from supervision.archive_verify import verify_archive

supervision_cli = AppGroup("supervision", help="Supervision: export a tender's complete archive, verify one offline.")


@supervision_cli.command("export-archive", with_appcontext=False)
@click.option("--tender", "code", required=True, help="Code of the tender to export.")
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="ZIP file to write (replaced atomically).")
@with_appcontext
def export_archive_command(code: str, out: Path) -> None:
    """Write the tender's archive and print its manifest hash (also recorded in the audit trail)."""
    with force_locale("en"):
        try:
            tender = find_tender(code)
        except NotFound as exc:
            raise click.ClickException(exc.to_dict()["message"]) from exc
    manifest = export_archive(tender.id, out)
    db.session.commit()
    click.echo(f"wrote {out}: {len(manifest.members)} files", err=True)
    click.echo(f"manifest sha256 {manifest.sha256}")


def _trusted(path: Path | None) -> dict[str, str] | None:
    """Key ids from the JSON of ``GET /api/transparency/keys`` (a list, or an object with ``keys``)."""
    if path is None:
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"cannot read {path}: {exc}") from exc
    items = value.get("keys") if isinstance(value, dict) else value
    if not isinstance(items, list) or not all(isinstance(i, dict) and "use" in i and "key_id" in i for i in items):
        raise click.BadParameter(f"{path} is not the platform's key list (items with use and key_id)")
    return {str(i["use"]): str(i["key_id"]) for i in items}


@supervision_cli.command("verify-archive", with_appcontext=False)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--keys", "keys_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The platform's published keys (JSON of GET /api/transparency/keys) the archive must use.")
def verify_archive_command(file: Path, keys_file: Path | None) -> None:
    """Verify an archive offline: print each problem and exit 1, or print how many files were verified."""
    verdict = verify_archive(file, trusted_keys=_trusted(keys_file))
    for problem in verdict.problems:
        click.echo(problem, err=True)
    if not verdict.ok:
        click.echo(f"archive NOT verified: {len(verdict.problems)} problem(s)", err=True)
        raise SystemExit(1)
    click.echo(f"archive verified: {verdict.checked} files (manifest sha256 {verdict.manifest_sha256})")
