"""``ebid users ...`` and ``ebid ca ...``: organisations, persons, roles and the platform CA.

Secrets never come from argv (where ``ps`` and shell history would see them): passwords come from
``--password-stdin`` or a prompt; the CA passphrase from ``--passphrase-file``, ``EBID_CA_PASSPHRASE``
or a prompt.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from flask.cli import AppGroup

from core.actor import Actor
from core.db import db
from core.errors import DomainError
from core.identity import ca as platform_ca
from core.identity import services
from core.identity.models import ORG_ROLES, OrganisationKind, Role

users_cli = AppGroup("users", help="Organisations (by USCC), persons and their roles.")
ca_cli = AppGroup("ca", help="The platform certificate authority: init, issue, revoke, CRL.")

CLI_ACTOR = Actor.system(source="cli")


def _run(action: Callable[[], Any]) -> Any:
    """Run a service call and commit; a refusal rolls back and exits 1 with its message."""
    try:
        result = action()
    except DomainError as exc:
        db.session.rollback()
        details = "; ".join(f"{field}: {', '.join(msgs)}" for field, msgs in exc.to_dict()["fields"].items()
                            if ", ".join(msgs) != exc.to_dict()["message"])
        raise click.ClickException(exc.to_dict()["message"] + (f" ({details})" if details else "")) from None
    db.session.commit()
    return result


def _organisation(uscc: str):
    org = services.organisation_by_uscc(uscc)
    if org is None:
        raise click.ClickException(f"No organisation with the unified social credit code {uscc} is registered.")
    return org


def _person(email: str):
    person = services.person_by_email(email)
    if person is None:
        raise click.ClickException(f"No person with the e-mail {email}.")
    return person


@users_cli.command("create-org")
@click.option("--uscc", required=True, help="Unified social credit code (统一社会信用代码), 18 characters.")
@click.option("--name", required=True, help="Registered name.")
@click.option("--kind", required=True, type=click.Choice([k.value for k in OrganisationKind]))
@click.option("--region", default=None, help="Administrative region code, e.g. 370200.")
@click.option("--sme", is_flag=True, help="A small or medium-sized enterprise (中小企业).")
def create_org_command(uscc: str, name: str, kind: str, region: str | None, sme: bool) -> None:
    """Register an organisation under its USCC."""
    org = _run(lambda: services.register_organisation(CLI_ACTOR, uscc, name, kind, region=region, is_sme=sme))
    click.echo(f"registered organisation {org.name} ({org.uscc}), id {org.id}")


def _read_password(from_stdin: bool, none: bool) -> str | None:
    if none:
        return None
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", "roles", multiple=True, type=click.Choice([r.value for r in Role]),
              help="Role to grant (repeatable); organisation roles need --org.")
@click.option("--org", "org_uscc", default=None, help="USCC of the organisation the organisation roles are for.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@click.option("--no-password", is_flag=True, help="No password: the person logs in by certificate only.")
def create_person_command(email: str, name: str, roles: tuple[str, ...], org_uscc: str | None,
                          password_stdin: bool, no_password: bool) -> None:
    """Create a person with a login (the password is prompted for unless --password-stdin)."""
    org = _organisation(org_uscc) if org_uscc else None
    password = _read_password(password_stdin, no_password)

    def create():
        person = services.create_person(CLI_ACTOR, email, name, password=password)
        for role in roles:
            services.grant_role(CLI_ACTOR, person, role, org if Role(role) in ORG_ROLES else None)
        return person

    person = _run(create)
    granted = ", ".join(roles) or "no roles"
    click.echo(f"created {person.name} <{person.email}>, id {person.id} ({granted}"
               f"{f' for {org.name}' if org else ''})")


@users_cli.command("grant")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--org", "org_uscc", default=None, help="USCC, for organisation roles.")
def grant_command(email: str, role: str, org_uscc: str | None) -> None:
    """Grant a role to a person."""
    person, org = _person(email), _organisation(org_uscc) if org_uscc else None
    _run(lambda: services.grant_role(CLI_ACTOR, person, role, org))
    click.echo(f"{person.email} holds {role}{f' for {org.name}' if org else ''}")


@users_cli.command("disable")
@click.option("--email", required=True)
def disable_command(email: str) -> None:
    """Disable a person's account (no login, no API token works)."""
    person = _person(email)
    _run(lambda: services.set_enabled(CLI_ACTOR, person, False))
    click.echo(f"disabled {person.email}")


def _passphrase(passphrase_file: Path | None, *, confirm: bool = False) -> str:
    if passphrase_file is not None:
        return (passphrase_file.read_text(encoding="utf-8").splitlines() or [""])[0]
    from_env = os.environ.get("EBID_CA_PASSPHRASE")
    if from_env:
        return from_env
    return click.prompt("CA passphrase", hide_input=True, confirmation_prompt=confirm)


passphrase_option = click.option(
    "--passphrase-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
    help="File whose first line is the CA passphrase (else EBID_CA_PASSPHRASE, else a prompt).")


def _unlock(passphrase_file: Path | None) -> platform_ca.PlatformCA:
    passphrase = _passphrase(passphrase_file)
    return _run(lambda: platform_ca.load_ca(platform_ca.keys_dir(), passphrase))


@ca_cli.command("init")
@passphrase_option
@click.option("--common-name", default="ebid Platform Root CA", show_default=True)
@click.option("--days", default=platform_ca.DEFAULT_CA_DAYS, show_default=True, type=click.IntRange(1, 36500))
def ca_init_command(passphrase_file: Path | None, common_name: str, days: int) -> None:
    """Create the platform root CA (EC P-256); refuses to overwrite an existing one."""
    directory = platform_ca.keys_dir()
    if (directory / platform_ca.CA_KEY_FILE).exists() or (directory / platform_ca.CA_CERT_FILE).exists():
        raise click.ClickException(f"A platform CA already exists in {directory}; it is never overwritten.")
    passphrase = _passphrase(passphrase_file, confirm=True)
    ca = _run(lambda: platform_ca.init_ca(CLI_ACTOR, directory, passphrase, common_name=common_name,
                                          validity_days=days))
    click.echo(f"platform CA created in {directory}")
    click.echo(f"subject {ca.certificate.subject.rfc4514_string()}")
    click.echo(f"SHA-256 fingerprint {platform_ca.fingerprint(ca.certificate)}")


@ca_cli.command("issue")
@click.option("--csr", "csr_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--person", "email", default=None, help="E-mail of the person (holder of an organisation certificate).")
@click.option("--org", "org_uscc", default=None, help="USCC of the organisation; the CSR must carry it.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--days", default=None, type=click.IntRange(1, 3650), help="Validity (default 730 days).")
@passphrase_option
def ca_issue_command(csr_path: Path, email: str | None, org_uscc: str | None, out_path: Path, days: int | None,
                     passphrase_file: Path | None) -> None:
    """Issue a certificate from a CSR for a person (--person) or an organisation (--org)."""
    if not email and not org_uscc:
        raise click.UsageError("Give --person EMAIL or --org USCC (or both: an organisation certificate held by a person).")
    person = _person(email) if email else None
    org = _organisation(org_uscc) if org_uscc else None
    ca = _unlock(passphrase_file)
    row = _run(lambda: platform_ca.issue_certificate(CLI_ACTOR, csr_path.read_bytes(), person, org, ca=ca,
                                                     validity_days=days))
    out_path.write_text(row.pem)
    click.echo(f"issued certificate serial {row.serial} to {row.subject}, valid until {row.not_after.isoformat()}; "
               f"written to {out_path}")


@ca_cli.command("revoke")
@click.argument("serial")
@click.option("--reason", default="unspecified", show_default=True,
              type=click.Choice(list(platform_ca.REASONS)), help="X.509 revocation reason.")
def ca_revoke_command(serial: str, reason: str) -> None:
    """Revoke a certificate by serial (hex); run 'ebid ca crl' afterwards to publish it."""
    row = _run(lambda: platform_ca.revoke_certificate(CLI_ACTOR, platform_ca.certificate_by_serial(serial), reason))
    click.echo(f"revoked certificate {row.serial} ({reason})")


@ca_cli.command("crl")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 365), help="Days until the next update.")
@passphrase_option
def ca_crl_command(out_path: Path, days: int, passphrase_file: Path | None) -> None:
    """Write the certificate revocation list (PEM), signed by the CA."""
    ca = _unlock(passphrase_file)
    out_path.write_bytes(platform_ca.build_crl(ca, next_update_days=days))
    click.echo(f"CRL written to {out_path}")
