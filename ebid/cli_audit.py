"""``ebid audit ...``: print and anchor the head of the audit trail, verify the chain and its anchors."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from core.audit import Head, current_head
from core.audit_verify import anchors_path, append_anchor, verify_with_anchors

audit_cli = AppGroup("audit", help="Audit trail: anchor the head, verify the hash chain.")


def _data_dir() -> Path:
    return current_app.extensions["ebid.settings"].data_dir


def _parse_heads(ctx, param, values: tuple[str, ...]) -> list[Head]:
    try:
        return [Head.parse(value) for value in values]
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@audit_cli.command("head")
def head_command() -> None:
    """Print the head (SEQ:HASH) and append it to the anchors file."""
    head = current_head()
    path = anchors_path(_data_dir())
    append_anchor(path, head)
    click.echo(str(head))
    click.echo(f"anchored in {path}; keep a copy where database administrators cannot write", err=True)


@audit_cli.command("verify")
@click.option("--expect", multiple=True, metavar="SEQ:HASH", callback=_parse_heads,
              help="A head published earlier that must still be part of the trail (repeatable).")
@click.option("--anchors-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Anchors file to check (default: audit-anchors.log in the data directory).")
def verify_command(expect: list[Head], anchors_file: Path | None) -> None:
    """Verify the hash chain and the anchors; exit 1 naming the first broken link."""
    path = anchors_file or anchors_path(_data_dir())
    result = verify_with_anchors(path, expect)
    if not result.ok:
        click.echo(f"audit trail BROKEN at {result.broken}", err=True)
        raise SystemExit(1)
    click.echo(f"audit trail intact: {result.count} events, head {result.head}, "
               f"{result.anchors_checked} anchors checked ({path})")
