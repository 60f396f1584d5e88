"""``ebid bids ...``: verify a tender's stored bids and log; close tenders whose deadline has passed."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from bidding.models import Tender
from bidding.sealed_verify import verify_tender
from bidding.tasks import close_due
from core.actor import Actor
from core.db import db


@click.group("bids")
def bids_cli() -> None:
    """Sealed bids (投标文件): verification and deadline closing."""


@bids_cli.command("verify")
@click.argument("tender_code")
@click.option("--quick", is_flag=True, help="Check envelope hashes only, not every envelope's signature.")
@with_appcontext
def verify_command(tender_code: str, quick: bool) -> None:
    """Check a tender's log, signed tree heads, receipts and stored envelopes; exit 1 on any problem."""
    tender = db.session.scalar(select(Tender).where(Tender.code == tender_code))
    if tender is None:
        raise click.ClickException(f"No tender has the code {tender_code!r}.")
    report = verify_tender(tender, deep=not quick)
    for problem in report.problems:
        click.echo(f"PROBLEM {problem}")
    click.echo(f"{tender.code}: {report.entries} log entries, {report.heads} signed tree heads, {report.bids} bids: "
               + ("all intact" if report.ok else f"{len(report.problems)} problem(s)"))
    if not report.ok:
        raise SystemExit(1)


@bids_cli.command("close-due")
@with_appcontext
def close_due_command() -> None:
    """Close every tender whose bid deadline has passed (what the 10 s periodic task does)."""
    results = close_due(Actor.system(source="cli"))
    for tender_id, outcome in results.items():
        click.echo(f"tender {tender_id}: {outcome}")
    click.echo(f"{len(results)} tender(s) closed or moved on")
