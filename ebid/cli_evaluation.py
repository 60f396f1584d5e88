"""``ebid evaluation ...``: import the expert pool (评标专家库), verify and export a tender's expert draw.

* ``import-experts FILE``: the CSV import (all or nothing; every bad line is printed with what to fix);
* ``verify-draw --tender CODE``: recompute every round from the stored seed, beacon and frozen list and
  check it against the tender's transparency log (commitment before reveal, SHA-256 of the seed);
* ``export-draw --tender CODE -o FILE`` and ``verify-draw --file FILE``: the same check offline, from
  the exported document alone (no database);
* ``sign-declaration --key KEY TEXT``: sign a recusal declaration with the expert's certificate key;
* ``verify-report FILE [--tender CODE] [--ca CA.pem]``: check every signature of an evaluation report
  (评标报告) against the platform CA: final, incomplete (a member's signature missing) or invalid (the
  member whose signature fails is named). With ``--tender`` the expected members come from the platform;
  without it, from the file's own signature fields.

A failed verification exits with status 1.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import click
from cryptography.hazmat.primitives import serialization
from flask.cli import AppGroup
from sqlalchemy import select

from bidding.models import Tender
from core.actor import Actor
from core.db import db
from crypto import keys
from evaluation import drawing, experts
from evaluation.draw_errors import ImportRejected
from evaluation.draw_rules import RoundCheck

evaluation_cli = AppGroup("evaluation", help="Evaluation: the expert pool and verifiable expert draws.")

CLI_ACTOR = Actor.system(source="cli")


def _tender(code: str) -> Tender:
    tender = db.session.scalar(select(Tender).where(Tender.code == code))
    if tender is None:
        raise click.ClickException(f"No tender has the code {code}.")
    return tender


@evaluation_cli.command("import-experts")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_experts_command(file: Path) -> None:
    """Import or update experts from a UTF-8 CSV file (header row; see docs/drawing.md)."""
    try:
        report = experts.import_experts(CLI_ACTOR, file.read_bytes())
    except ImportRejected as exc:
        db.session.rollback()
        for line, text in exc.problems:
            click.echo(f"{file.name}:{line}: {text}", err=True)
        raise click.ClickException(f"Nothing was imported: {len(exc.problems)} problem(s) to correct first.") from None
    db.session.commit()
    click.echo(f"Imported {len(report.created)} new and {len(report.updated)} updated experts; "
               f"{len(report.persons_created)} new logins.")


def _report(code: str | None, checks: list[RoundCheck]) -> None:
    for check in checks:
        if check.ok:
            click.echo(f"round {check.number}: OK (the committee follows from the committed seed)")
        for problem in check.problems:
            click.echo(f"round {check.number}: {problem}")
    if checks and all(c.ok for c in checks):
        click.echo(f"VERIFIED: every expert draw round of tender {code} recomputes from its seed, and each "
                   "commitment was logged before its reveal.")
        return
    click.echo(f"FAILED: the expert draw of tender {code or '(unknown)'} does not verify.")
    raise SystemExit(1)


@evaluation_cli.command("verify-draw")
@click.option("--tender", "tender_code", help="Verify the stored draw of this tender against its log.")
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Verify an exported draw offline (no database).")
def verify_draw_command(tender_code: str | None, file: Path | None) -> None:
    """Recompute a tender's expert draw and print the verdict (exit 1 when it does not verify)."""
    if bool(tender_code) == bool(file):
        raise click.UsageError("Give either --tender CODE or --file FILE.")
    if file is not None:
        data = file.read_bytes()
        code, checks = drawing.verify_document(data)
        if code is not None:
            click.echo(f"log key id {drawing.log_key_id(json.loads(data))}: compare it with the platform's "
                       "published transparency keys (/api/transparency/keys).")
        _report(code, checks)
        return
    tender = _tender(tender_code)
    if drawing.request_of(tender.id) is None:
        raise click.ClickException(f"Tender {tender.code} has no expert draw.")
    _report(tender.code, drawing.verify_tender(tender.id))


@evaluation_cli.command("export-draw")
@click.option("--tender", "tender_code", required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
def export_draw_command(tender_code: str, output: Path) -> None:
    """Write the tender's draw (rounds, seeds, frozen lists, log entries) as JSON for offline verification."""
    tender = _tender(tender_code)
    if drawing.request_of(tender.id) is None:
        raise click.ClickException(f"Tender {tender.code} has no expert draw.")
    output.write_bytes(drawing.export_document(tender))
    click.echo(f"Wrote {output} ({len(drawing.request_of(tender.id).rounds)} round(s)); check it with "
               f"`ebid evaluation verify-draw --file {output}`.")


@evaluation_cli.command("sign-declaration")
@click.option("--key", "key_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The expert's certificate key: an EBIDKEY file (passphrase asked) or an unencrypted PEM key.")
@click.option("--passphrase", envvar="EBID_KEY_PASSPHRASE", default=None, help="Passphrase of an EBIDKEY file.")
@click.argument("text_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def sign_declaration_command(key_file: Path, passphrase: str | None, text_file: Path) -> None:
    """Sign a recusal declaration (回避声明, the UTF-8 text as shown) and print the base64 signature to paste."""
    data = key_file.read_bytes()
    try:
        if keys.PEM_BEGIN.encode() in data:
            key = keys.decrypt_private_key(data, passphrase or click.prompt("Passphrase", hide_input=True))
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise click.ClickException(f"Cannot open the key: {exc}") from None
    text = text_file.read_text(encoding="utf-8")
    click.echo(f"SHA-256 of the text: {hashlib.sha256(text.encode('utf-8')).hexdigest()}", err=True)
    click.echo(base64.b64encode(keys.sign(key, text.encode("utf-8"))).decode())


def _fields_of(pdf: bytes) -> list[tuple[str, str]]:
    """The file's own signature fields, members unknown: what to expect without the platform's record."""
    import io

    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign import fields

    try:
        reader = PdfFileReader(io.BytesIO(pdf))
        return [(name, "") for name, _value, _ref in fields.enumerate_sig_fields(reader)]
    except Exception:  # an unreadable file: verify_report says so with no field expected
        return []


@evaluation_cli.command("verify-report")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tender", "tender_code", default=None, help="The tender's code: expect its committee's fields.")
@click.option("--ca", "ca_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The trust root (PEM); default: this platform's CA certificate.")
def verify_report_command(file: Path, tender_code: str | None, ca_file: Path | None) -> None:
    """Verify an evaluation report's signatures; exit 1 unless it is final."""
    from cryptography import x509

    from core.identity.ca import load_ca_certificate
    from evaluation import report as reports
    from evaluation.report_verify import verify_report

    ca = x509.load_pem_x509_certificate(ca_file.read_bytes()) if ca_file else load_ca_certificate()
    data = file.read_bytes()
    if tender_code:
        stored = reports.get_report(_tender(tender_code).id)
        if stored is None:
            raise click.ClickException(f"Tender {tender_code} has no evaluation report yet.")
        expected = [(f["field"], f["name"]) for f in stored.fields]
    else:
        expected = _fields_of(data)
    verdict = verify_report(data, ca, expected)
    for sig in verdict.signatures:
        line = f"{sig.field:<10} {sig.member or '-':<16} {sig.state}"
        if sig.signer_subject:
            line += f"  signer: {sig.signer_subject}"
        if sig.reason:
            line += f"  ({sig.reason})"
        click.echo(line)
    for problem in verdict.problems:
        click.echo(f"problem: {problem}")
    click.echo(f"verdict: {verdict.status}")
    if verdict.status != "final":
        raise SystemExit(1)
