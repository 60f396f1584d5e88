"""``ebid issuer-sim``: run the reference issuer (模拟出函机构) over real HTTP, or make its keys.

    ebid issuer-sim init --code BANK1 --name "示范银行" [--data-dir DIR]
    ebid issuer-sim --code BANK1 --name "示范银行" --port 5101 [--data-dir DIR] [--delay 2] [--failure-rate 0.1]
                    [--limit 5000000] [--deny USCC ...] [--platform-url http://127.0.0.1:5000]
                    [--platform-cert FILE] [--platform-id ebid-platform]

Without ``--platform-cert`` the simulator trusts the message certificate of the platform configured
in this environment (``EBID_DATA_DIR``), which is what a local demo wants.
"""

from __future__ import annotations

import logging
import os
from decimal import Decimal, InvalidOperation
from pathlib import Path

import click
from cryptography.hazmat.primitives import hashes
from flask.cli import with_appcontext
from werkzeug.serving import make_server

from core.clock import now
from guarantees import platform_certificate_pem, platform_id
from guarantees.issuer_sim import SimConfig, create_app
from guarantees.issuer_sim.keys import load_or_create_keys
from guarantees.letters import ISSUER_KINDS
from guarantees.protocol import public_key_from_pem


def _default_data_dir(code: str) -> Path:
    return Path(os.environ.get("EBID_DATA_DIR") or "instance").resolve() / "issuers" / code


def _limit(value: str | None) -> Decimal | None:
    if value in (None, "", "none"):
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise click.BadParameter("give an amount in CNY such as 5000000, or 'none' for no limit") from None
    if not amount.is_finite() or amount <= 0:
        raise click.BadParameter("the limit must be a positive amount")
    return amount


def _print_keys(data_dir: Path, code: str, name: str, uscc: str | None, kind: str, api_url: str) -> None:
    keys, created = load_or_create_keys(data_dir, code=code, name=name, uscc=uscc, now=now())
    click.echo(f"Issuer {code} ({name}): keys {'created' if created else 'already present'} in {keys.directory}")
    click.echo(f"  message certificate: {keys.path('message_cert')}")
    click.echo(f"      SHA-256 fingerprint {keys.message_cert.fingerprint(hashes.SHA256()).hex()}")
    click.echo(f"  issuer CA (trust root of its letters): {keys.path('ca_cert')}")
    click.echo(f"      SHA-256 fingerprint {keys.ca_cert.fingerprint(hashes.SHA256()).hex()}")
    click.echo(f"  letter-signing certificate: {keys.path('letter_cert')}")
    click.echo("Admit it on the platform with:")
    click.echo(f"  ebid guarantees add-issuer --code {code} --name '{name}' --uscc {uscc or '<its USCC>'} --kind {kind} "
               f"--api-url {api_url} --cert {keys.path('message_cert')} --trust-root {keys.path('ca_cert')}")


@click.group("issuer-sim", invoke_without_command=True)
@click.option("--code", help="The issuer's code (its sender id in messages), e.g. BANK1.")
@click.option("--name", help="The issuer's name, printed on its letters.")
@click.option("--kind", type=click.Choice(ISSUER_KINDS), default="bank", show_default=True)
@click.option("--uscc", help="The issuer's own unified social credit code (put in its certificates).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5101, show_default=True, type=int)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where its keys and store live [default: $EBID_DATA_DIR/issuers/CODE].")
@click.option("--delay", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds before each answer (underwriting, release, claim, reveal).")
@click.option("--failure-rate", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Fraction of requests answered 503 (for retry tests).")
@click.option("--limit", "limit", default="5000000", show_default=True,
              help="Largest guarantee amount in CNY it approves ('none' for no limit).")
@click.option("--deny", multiple=True, metavar="USCC", help="A principal (bidder) USCC it refuses; repeatable.")
@click.option("--extra-days", default=0, show_default=True, type=click.IntRange(0, 365),
              help="Days its letters stay valid beyond the bid validity.")
@click.option("--platform-url", default="http://127.0.0.1:5000", show_default=True,
              help="Where callbacks go (POST {url}/api/guarantees/callbacks); also the verification link.")
@click.option("--platform-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The platform's message certificate or public key (PEM) [default: this environment's].")
@click.option("--platform-id", "platform_sender", help="The platform's sender id [default: this environment's].")
@click.option("--locale", default="zh_CN", show_default=True, help="Language of refusal reasons.")
@click.pass_context
@with_appcontext
def issuer_sim_cli(ctx: click.Context, code: str | None, name: str | None, kind: str, uscc: str | None, host: str,
                   port: int, data_dir: Path | None, delay: float, failure_rate: float, limit: str,
                   deny: tuple[str, ...], extra_days: int, platform_url: str, platform_cert: Path | None,
                   platform_sender: str | None, locale: str) -> None:
    """Run the reference e-guarantee issuer (a simulated bank) over HTTP; `init` makes its keys."""
    if ctx.invoked_subcommand is not None:
        return
    if not code or not name:
        raise click.UsageError("give --code and --name (e.g. --code BANK1 --name 示范银行)")
    pem = platform_cert.read_bytes() if platform_cert else platform_certificate_pem().encode()
    try:
        platform_key = public_key_from_pem(pem)
    except ValueError as exc:
        raise click.BadParameter(f"not a P-256 certificate or public key in PEM: {exc}",
                                 param_hint="--platform-cert") from None
    try:
        config = SimConfig(code=code, name=name, kind=kind, uscc=uscc, data_dir=data_dir or _default_data_dir(code),
                           platform_url=platform_url, platform_id=platform_sender or platform_id(),
                           platform_public_key=platform_key, delay=delay, failure_rate=failure_rate,
                           amount_limit=_limit(limit), denied_usccs=frozenset(deny),
                           extra_validity_days=extra_days, locale=locale)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(config)
    sim = app.extensions["issuer_sim"]
    if sim.keys_created:
        _print_keys(config.data_dir, code, name, uscc, kind, f"http://{host}:{port}")
    server = make_server(host, port, app, threaded=True)
    click.echo(f"Issuer {code} listening on http://{host}:{port} (store {config.data_dir}); "
               f"callbacks to {config.callback_url}; Ctrl+C to stop")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sim.close()


@issuer_sim_cli.command("init")
@click.option("--code", required=True, help="The issuer's code, e.g. BANK1.")
@click.option("--name", required=True, help="The issuer's name.")
@click.option("--kind", type=click.Choice(ISSUER_KINDS), default="bank", show_default=True)
@click.option("--uscc", help="The issuer's own unified social credit code (put in its certificates).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where its keys live [default: $EBID_DATA_DIR/issuers/CODE].")
@click.option("--api-url", default="http://127.0.0.1:5101", show_default=True,
              help="The address it will listen on (printed in the admission command).")
def init_command(code: str, name: str, kind: str, uscc: str | None, data_dir: Path | None, api_url: str) -> None:
    """Make the issuer's CA, message and letter keys (once) and print the certificate paths."""
    try:
        SimConfig(code=code, name=name, kind=kind, data_dir=data_dir or _default_data_dir(code))  # checks the code
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _print_keys(data_dir or _default_data_dir(code), code, name, uscc, kind, api_url)
