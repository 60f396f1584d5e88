"""``ebid guarantees ...``: issuers (出函机构) and their certificates, products and rates, the cap, figures, outbox.

Every change goes through the guarantee services as the platform (system actor, source "cli"), is
audited, and is committed only when it succeeds; a refusal exits with status 1 and its message.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from flask.cli import AppGroup
from sqlalchemy import select

import guarantees
from core.actor import Actor
from core.db import db
from core.errors import DomainError
from core.identity import organisation_by_uscc, register_organisation
from core.identity.models import OrganisationKind
from guarantees.models import GuaranteeProduct, IssuerKind, OutboundMessage, OutboxState

guarantees_cli = AppGroup("guarantees", help="E-guarantees: issuers, products, rates, the cap, figures, outbox.")

CLI_ACTOR = Actor.system(source="cli")


def _run(action: Callable[[], Any]) -> Any:
    """Run a service call and commit; a refusal rolls back and exits 1 with its message."""
    try:
        result = action()
    except DomainError as exc:
        db.session.rollback()
        body = exc.to_dict()
        details = "; ".join(f"{field}: {', '.join(msgs)}" for field, msgs in body["fields"].items()
                            if ", ".join(msgs) != body["message"])
        raise click.ClickException(body["message"] + (f" ({details})" if details else "")) from None
    db.session.commit()
    return result


def _issuer(code: str):
    issuer = guarantees.issuer_by_code(code)
    if issuer is None:
        raise click.ClickException(f"No issuer has the code {code}; add it with `ebid guarantees add-issuer`.")
    return issuer


def _product(issuer_code: str, code: str) -> GuaranteeProduct:
    issuer = _issuer(issuer_code)
    product = db.session.scalar(select(GuaranteeProduct).where(GuaranteeProduct.issuer_id == issuer.id,
                                                               GuaranteeProduct.code == code))
    if product is None:
        raise click.ClickException(f"{issuer.code} has no product {code}.")
    return product


def _when(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise click.ClickException("Give --from with its UTC offset, e.g. 2026-03-01T00:00:00+08:00.")
    return value


@guarantees_cli.command("add-issuer")
@click.option("--code", required=True, help="The issuer's sender id in the protocol, e.g. ICBC-QD.")
@click.option("--name", required=True, help="Registered name of the issuer organisation.")
@click.option("--uscc", required=True, help="Unified social credit code of the issuer (registered if new).")
@click.option("--kind", required=True, type=click.Choice([k.value for k in IssuerKind]))
@click.option("--api-url", required=True, help="Base URL of the issuer's API (OrderApply goes to <url>/orders).")
@click.option("--cert", "cert_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM certificate verifying the issuer's protocol messages (ECDSA P-256).")
@click.option("--trust-root", "root_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM certificate of the issuer's own CA (its letter signatures chain to it).")
@click.option("--region", default=None, help="Administrative division code of the organisation (new ones).")
def add_issuer(code, name, uscc, kind, api_url, cert_file, root_file, region) -> None:
    """Admit an issuer (bank, insurer, guarantee company) to the platform's whitelist."""
    def work():
        org = organisation_by_uscc(uscc) or register_organisation(CLI_ACTOR, uscc, name, OrganisationKind.ISSUER,
                                                                  region=region)
        return guarantees.admit_issuer(CLI_ACTOR, org, code=code, kind=kind, api_base_url=api_url,
                                       message_cert_pem=cert_file.read_text(),
                                       letter_trust_root_pem=root_file.read_text())
    issuer = _run(work)
    click.echo(f"Issuer {issuer.code} ({issuer.name}) admitted; API {issuer.api_base_url}")


@guarantees_cli.command("admission")
@click.option("--issuer", "issuer_code", required=True)
@click.option("--suspend/--admit", default=True, help="Suspend (default) or admit again.")
@click.option("--reason", default="", help="Why (recorded in the audit trail).")
def admission(issuer_code, suspend, reason) -> None:
    """Suspend an issuer (its products are no longer offered) or admit it again."""
    issuer = _run(lambda: guarantees.set_issuer_admission(CLI_ACTOR, _issuer(issuer_code), not suspend, reason))
    click.echo(f"{issuer.code}: {'admitted' if issuer.is_admitted else 'suspended'}")


@guarantees_cli.command("update-issuer")
@click.option("--issuer", "issuer_code", required=True)
@click.option("--cert", "cert_file", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="New PEM certificate of the issuer's message key (ECDSA P-256).")
@click.option("--trust-root", "root_file", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="New PEM certificate of the issuer's CA for letters issued from now on.")
@click.option("--api-url", default=None, help="New base URL of the issuer's API.")
@click.option("--reason", required=True, help="Why (recorded in the audit trail), e.g. 'annual key rotation'.")
@click.option("--compromised", is_flag=True,
              help="The old message key is compromised: refuse its messages at once, without the clock window.")
def update_issuer(issuer_code, cert_file, root_file, api_url, reason, compromised) -> None:
    """Rotate an issuer's certificates or move its API (a new version; the old one still verifies its past)."""
    version = _run(lambda: guarantees.update_issuer(
        CLI_ACTOR, _issuer(issuer_code), message_cert_pem=cert_file.read_text() if cert_file else None,
        letter_trust_root_pem=root_file.read_text() if root_file else None, api_base_url=api_url, reason=reason,
        compromised=compromised))
    click.echo(f"{issuer_code}: certificate version {version.version} in force from "
               f"{version.valid_from.isoformat()}; API {version.api_base_url}")


@guarantees_cli.command("issuer-certificates")
@click.option("--issuer", "issuer_code", required=True)
def issuer_certificates(issuer_code) -> None:
    """List an issuer's certificate versions: fingerprints, API address, when each was in force."""
    for version in _issuer(issuer_code).certificates:
        until = version.valid_until.isoformat() if version.valid_until else "current"
        flag = " REVOKED" if version.revoked else ""
        click.echo(f"v{version.version} {version.valid_from.isoformat()} .. {until}{flag} "
                   f"message={version.message_cert_sha256[:16]} root={version.trust_root_sha256[:16]} "
                   f"api={version.api_base_url} reason={version.reason or '-'}")


@guarantees_cli.command("add-product")
@click.option("--issuer", "issuer_code", required=True)
@click.option("--code", required=True)
@click.option("--name", required=True)
@click.option("--rate", required=True, help="Premium rate in per mille (‰), e.g. 0.8")
@click.option("--min-fee", required=True, help="Minimum premium in CNY, e.g. 300.00")
@click.option("--max-fee", default=None, help="Optional maximum premium in CNY.")
@click.option("--extra-days", default=0, show_default=True, type=int, help="Validity beyond the bid validity.")
@click.option("--claim-days", default=7, show_default=True, type=int, help="Days the issuer has to answer a claim.")
def add_product(issuer_code, code, name, rate, min_fee, max_fee, extra_days, claim_days) -> None:
    """Add a guarantee product with its first rate (refused above the rate cap)."""
    product = _run(lambda: guarantees.add_product(
        CLI_ACTOR, _issuer(issuer_code), code=code, name=name, minimum_fee=min_fee, rate_permille=rate,
        maximum_fee=max_fee, extra_validity_days=extra_days, claim_answer_days=claim_days))
    click.echo(f"Product {product.code} of {issuer_code} added at {rate}‰ (id {product.id})")


@guarantees_cli.command("set-rate")
@click.option("--issuer", "issuer_code", required=True)
@click.option("--product", "product_code", required=True)
@click.option("--rate", required=True, help="New rate in per mille (‰).")
@click.option("--from", "effective_from", type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z"]), default=None,
              help="When it takes effect (default now), e.g. 2026-03-01T00:00:00+08:00.")
def set_rate(issuer_code, product_code, rate, effective_from) -> None:
    """Add a new rate version for a product (a new row; earlier orders keep their frozen rate)."""
    version = _run(lambda: guarantees.set_product_rate(CLI_ACTOR, _product(issuer_code, product_code), rate,
                                                       _when(effective_from)))
    click.echo(f"{issuer_code}/{product_code}: {version.rate_permille}‰ from {version.effective_from.isoformat()}")


@guarantees_cli.command("set-cap")
@click.option("--cap", required=True, help="Platform-wide rate cap in per mille (‰), e.g. 1.0")
@click.option("--reference", required=True, help="Reference rate for 'premiums saved', e.g. 1.5")
@click.option("--from", "effective_from", type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z"]), default=None)
def set_cap(cap, reference, effective_from) -> None:
    """Add a rate-policy version; products above a lowered cap stop being offered (rates are not changed)."""
    policy, affected = _run(lambda: guarantees.set_rate_policy(CLI_ACTOR, cap, reference, _when(effective_from)))
    click.echo(f"Cap {policy.cap_permille}‰, reference {policy.reference_permille}‰ from "
               f"{policy.effective_from.isoformat()}")
    for product in affected:
        click.echo(f"  no longer offered: {product.issuer.code}/{product.code} "
                   f"({guarantees.rate_in_force(product, policy.effective_from).rate_permille}‰)")


@guarantees_cli.command("figures")
@click.option("--period", "periods", required=True, multiple=True, help="2025, 2025-Q1 or 2025-03 (repeatable).")
@click.option("--region", default=None, help="Administrative division code, e.g. 370200.")
@click.option("--csv", "as_csv", is_flag=True, help="Write CSV to standard output.")
def figures(periods, region, as_csv) -> None:
    """Guarantees issued, amount guaranteed, premiums paid and saved, waivers, per period."""
    try:
        parsed = [guarantees.parse_period(p) for p in periods]
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    rows = [guarantees.figures_for(p, region) for p in parsed]
    if as_csv:
        guarantees.write_csv(rows, sys.stdout)
        return
    for row in rows:
        click.echo(f"{row.period} {row.region or 'all regions'}: {row.guarantees_issued} guarantees, "
                   f"{row.guaranteed_amount} CNY guaranteed, premiums {row.premiums_paid} CNY "
                   f"(saved {row.premiums_saved} CNY); {row.waivers} waivers ({row.bond_waived} CNY)")


@guarantees_cli.command("platform-cert")
def platform_cert() -> None:
    """Print the platform's sender id and message certificate (give it to each issuer)."""
    click.echo(f"# sender: {guarantees.platform_id()}", err=True)
    click.echo(guarantees.platform_certificate_pem(), nl=False)


@guarantees_cli.command("outbox")
@click.option("--retry", is_flag=True, help="Queue the failed messages again with a fresh attempt budget.")
def outbox(retry) -> None:
    """List messages to issuers that are pending or failed; optionally retry the failed ones."""
    if retry:
        count = _run(lambda: guarantees.retry_failed(CLI_ACTOR))
        click.echo(f"{count} message(s) queued again")
    stmt = (select(OutboundMessage).where(OutboundMessage.state.in_([OutboxState.PENDING, OutboxState.FAILED]))
            .order_by(OutboundMessage.id))
    for message in db.session.scalars(stmt):
        click.echo(f"{message.id} {message.order.order_no} {message.type} {message.state.value} "
                   f"attempts={message.attempts} next={message.next_attempt_at.isoformat()} "
                   f"error={message.last_error or '-'}")
