"""The demo's e-guarantees (电子保函): two simulated issuers over HTTP, four letters bought, one SME waiver.

Two reference issuers (:mod:`guarantees.issuer_sim`) run as real HTTP services on 127.0.0.1, in
background threads of the demo process, each with its own keys and store under
``<data dir>/issuers/<CODE>``. They are admitted on the platform with one product each at different
rates (1.0‰ and 0.8‰, with minimum fees) under a rate policy capping rates at 1.0‰ with 1.5‰ as the
reference rate. Bidders 1–4 then buy guarantees for their lots through the real order flow
(outbox → HTTP → signed callbacks → letters), bind them to their bids and verify them, including the
issuer's public registry; bidder 5, an SME, uses the SME waiver. The figures follow.

While this runs, the platform listens on the demo's address so the issuers' callbacks reach it; when
the demo then serves the site, the issuers keep running in the same process. A second run buys
nothing again: it restarts the issuers on the addresses they were admitted with and reports.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlparse

import click
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from flask import Flask, current_app
from sqlalchemy import select
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from core.actor import Actor
from core.clock import beijing, now
from core.db import db
from core.errors import DomainError
from core.identity import services as identity
from core.identity.access import actor_for
from core.identity.models import Organisation, OrganisationKind, Role
from core.identity.uscc import make as make_uscc
from guarantees import (
    OrderState,
    add_product,
    admit_issuer,
    apply_for_guarantee,
    bind_to_bid,
    figures_for,
    issuer_by_code,
    offers,
    orders_of,
    parse_period,
    platform_certificate_pem,
    platform_id,
    policy_in_force,
    requirement_for,
    set_rate_policy,
    use_waiver,
    verify_letter,
)
from guarantees.issuer_sim import SimConfig, create_app
from guarantees.lifecycle import FINAL, ISSUED_OR_LATER
from guarantees.models import BondWaiver, GuaranteeOrder, Issuer
from guarantees.protocol import public_key_from_pem
from guarantees.tasks import send_outbox

DEMO = Actor.system(source="demo")
POLICY_CAP, POLICY_REFERENCE = "1.0", "1.5"  # Qingdao 2024: the cap lowered from 1.5‰ to 1‰
WAIT_SECONDS = 60.0
PORTS_ENV = "EBID_DEMO_ISSUER_PORTS"


@dataclass(frozen=True)
class IssuerSpec:
    code: str
    name: str
    kind: str
    first17: str
    product_code: str
    product_name: str
    rate: str
    minimum_fee: str
    port: int


ISSUERS = (
    IssuerSpec("QDBANK", "青岛示范银行(模拟)", "bank", "91370200MA3QB8K25", "QDBANK-BID",
               "电子投标保函(见索即付)", "1.0", "100.00", 5101),
    IssuerSpec("HXINS", "华信财产保险(模拟)", "insurer", "91370202MA3R7TNB6", "HXINS-BOND",
               "投标保证保险(电子保单)", "0.8", "150.00", 5102),
)
# (bidder key, lot index, issuer code, letter type): each bidder chooses freely; the demo spreads them
PURCHASES = (("bidder1", 0, "QDBANK", "plain"), ("bidder2", 0, "HXINS", "sealed"),
             ("bidder3", 1, "QDBANK", "plain"), ("bidder4", 1, "HXINS", "plain"))
WAIVER_BIDDER, WAIVER_LOT = "bidder5", 0
WAIVER_STATEMENT = ("本公司为中小企业(已登记),自愿适用中小企业免收投标保证金政策,承诺投标截止后不撤回投标、"
                    "中标后按时签订合同;如有违反,接受信用惩戒。")


class DemoResult(Protocol):
    """What ``ebid demo`` seeded (:class:`ebid.demo.DemoResult`): organisations and people by key, the tender."""

    orgs: dict[str, Organisation]
    people: dict[str, Any]
    tender: Any


# -- HTTP services in threads ------------------------------------------------------------------------

@dataclass
class Service:
    """A WSGI app served on 127.0.0.1 from a daemon thread."""

    name: str
    server: BaseWSGIServer
    thread: threading.Thread
    on_stop: Callable[[], None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.server.host}:{self.server.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
        if self.on_stop is not None:
            self.on_stop()


class QuietHandler(WSGIRequestHandler):
    """The demo's issuers and platform listener do not log every request (errors are still logged)."""

    def log_request(self, *_args, **_kwargs) -> None:
        pass


def serve(name: str, app: Flask, host: str, port: int, on_stop: Callable[[], None] | None = None,
          request_handler: type[WSGIRequestHandler] = QuietHandler) -> Service:
    server = make_server(host, port, app, threaded=True, request_handler=request_handler)
    thread = threading.Thread(target=server.serve_forever, name=f"demo-{name}", daemon=True)
    thread.start()
    return Service(name, server, thread, on_stop)


@dataclass
class Market:
    """What the demo started: the issuers (kept while the site is served) and the platform listener."""

    issuers: list[Service] = field(default_factory=list)
    platform: Service | None = None
    lines: list[str] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)  # per order: order, bound, report (verification), problem
    waiver: BondWaiver | None = None

    def stop_platform(self) -> None:
        if self.platform is not None:
            self.platform.stop()
            self.platform = None

    def stop(self) -> None:
        self.stop_platform()
        for service in self.issuers:
            service.stop()
        self.issuers = []


def default_ports() -> tuple[int, ...]:
    raw = os.environ.get(PORTS_ENV, "")
    if not raw.strip():
        return tuple(spec.port for spec in ISSUERS)
    try:
        ports = tuple(int(p) for p in raw.split(","))
    except ValueError:
        raise click.UsageError(f"{PORTS_ENV} must list {len(ISSUERS)} port numbers, e.g. 5101,5102") from None
    if len(ports) != len(ISSUERS):
        raise click.UsageError(f"{PORTS_ENV} must list {len(ISSUERS)} port numbers, e.g. 5101,5102")
    return ports


# -- the market: policy, issuers, products -------------------------------------------------------------

def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _organisation(spec: IssuerSpec) -> Organisation:
    uscc = make_uscc(spec.first17)
    org = db.session.scalar(select(Organisation).where(Organisation.uscc == uscc))
    if org is None:
        org = identity.register_organisation(DEMO, uscc, spec.name, OrganisationKind.ISSUER, region="370200")
    return org


def start_issuer(spec: IssuerSpec, port: int, platform_url: str, market: Market) -> Issuer:
    """Start the simulated issuer on ``port`` (or the port it was admitted with) and admit it if new."""
    settings = current_app.extensions["ebid.settings"]
    issuer = issuer_by_code(spec.code)
    if issuer is not None:
        port = urlparse(issuer.api_base_url).port or port
    org = _organisation(spec)
    config = SimConfig(code=spec.code, name=spec.name, kind=spec.kind, uscc=org.uscc,
                       data_dir=settings.data_dir / "issuers" / spec.code, platform_url=platform_url,
                       platform_id=platform_id(), platform_public_key=public_key_from_pem(platform_certificate_pem()))
    app = create_app(config)
    sim = app.extensions["issuer_sim"]
    try:
        service = serve(spec.code, app, "127.0.0.1", port, on_stop=sim.close)
    except OSError as exc:
        sim.close()
        raise click.ClickException(f"the simulated issuer {spec.code} cannot listen on 127.0.0.1:{port} ({exc}); "
                                   f"free the port or set {PORTS_ENV}") from None
    market.issuers.append(service)
    if issuer is None:
        issuer = admit_issuer(DEMO, org, code=spec.code, kind=spec.kind, api_base_url=service.url,
                              message_cert_pem=_pem(sim.keys.message_cert),
                              letter_trust_root_pem=_pem(sim.keys.ca_cert))
        add_product(DEMO, issuer, code=spec.product_code, name=spec.product_name, minimum_fee=spec.minimum_fee,
                    rate_permille=spec.rate)
        market.lines.append(f"admitted issuer {spec.code} ({spec.name}) at {service.url}: {spec.product_name}, "
                            f"{spec.rate}‰, minimum fee {spec.minimum_fee} CNY")
    elif _fingerprint(x509.load_pem_x509_certificate(issuer.message_cert_pem.encode())) != \
            _fingerprint(sim.keys.message_cert):
        raise click.ClickException(f"the keys of issuer {spec.code} in {config.data_dir} are not the ones it was "
                                   "admitted with; restore that folder or start the demo with a fresh data dir")
    return issuer


def open_market(host: str, port: int, issuer_ports: tuple[int, ...] | None = None) -> Market:
    """Listen for callbacks on ``host:port``, start both issuers and admit them under the rate policy."""
    market = Market()
    callback_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    platform_url = f"http://{callback_host}:{port}"
    try:
        market.platform = serve("platform", current_app._get_current_object(), host, port)
    except OSError:  # something already serves there (`ebid serve` on the same data): callbacks go to it
        market.lines.append(f"{platform_url} is already in use; the issuers call back to whatever serves there")
    if policy_in_force() is None:
        set_rate_policy(DEMO, POLICY_CAP, POLICY_REFERENCE)
        market.lines.append(f"rate policy: cap {POLICY_CAP}‰, reference rate {POLICY_REFERENCE}‰")
    for spec, issuer_port in zip(ISSUERS, issuer_ports or default_ports(), strict=True):
        start_issuer(spec, issuer_port, platform_url, market)
    db.session.commit()
    return market


# -- buying, binding, verifying ----------------------------------------------------------------------

def _bidder(result: DemoResult, key: str) -> tuple[Organisation, Actor]:
    org = result.orgs[key]
    return org, actor_for(result.people[f"{key}@demo.ebid"], Role.BIDDER, org.id, source="demo")


def buy(result: DemoResult, market: Market) -> list[int]:
    """Each of bidders 1–4 applies once for its lot (never again on a later run); return the demo's order ids."""
    tender = result.tender
    ids = []
    for key, lot_index, code, guarantee_type in PURCHASES:
        org, actor = _bidder(result, key)
        lot = tender.lots[lot_index]
        existing = [o for o in orders_of(org.id) if o.lot_id == lot.id]
        if existing:
            ids.append(existing[0].id)
            continue
        offer = next((o for o in offers(tender, lot, org) if o.issuer.code == code), None)
        if offer is None:
            market.lines.append(f"{org.name}: {code} offers nothing for lot {lot.code}; no order")
            continue
        try:
            order = apply_for_guarantee(actor, tender, lot, offer.product, guarantee_type)
        except DomainError as exc:
            db.session.rollback()
            market.lines.append(f"{org.name}: no order for lot {lot.code}: {exc.to_dict()['message']}")
            continue
        db.session.commit()  # the outbox sends OrderApply after this commit
        ids.append(order.id)
        market.lines.append(f"{org.name} applied to {code} for lot {lot.code} ({guarantee_type}): order "
                            f"{order.order_no}, premium {order.premium} CNY at {offer.rate_permille.normalize()}‰")
    return ids


def _orders(ids: list[int]) -> list[GuaranteeOrder]:
    db.session.commit()  # end the read transaction: see what the callbacks wrote meanwhile
    db.session.expire_all()
    return list(db.session.scalars(select(GuaranteeOrder).where(GuaranteeOrder.id.in_(ids))
                                   .order_by(GuaranteeOrder.id)))


def wait_for_letters(ids: list[int], timeout: float = WAIT_SECONDS) -> list[GuaranteeOrder]:
    """Deliver due outbox messages and wait until every order has its letter (or a final answer)."""
    deadline = time.monotonic() + timeout
    while True:
        orders = _orders(ids)
        if all(o.state in ISSUED_OR_LATER or o.state in FINAL for o in orders) or time.monotonic() > deadline:
            return orders
        if any(o.state == OrderState.DRAFT for o in orders):
            send_outbox()  # what the worker does every 30 s (with Redis) or at once (embedded)
        time.sleep(0.2)


def bind_and_verify(result: DemoResult, orders: list[GuaranteeOrder]) -> list[dict]:
    """Bind each issued letter to its bidder's bid, then verify it by number and code with the issuer."""
    rows = []
    for order in orders:
        row = {"order": order, "bound": order.bound_at is not None, "report": None, "problem": None}
        if order.state == OrderState.ISSUED:
            try:
                bind_to_bid(actor_for(_person_of(result, order.bidder_id), Role.BIDDER, order.bidder_id,
                                      source="demo"), order)
                db.session.commit()
                row["bound"] = True
            except DomainError as exc:
                db.session.rollback()
                row["problem"] = exc.to_dict()["message"]
        if order.guarantee_no and order.verification_code:
            row["report"] = verify_letter(guarantee_no=order.guarantee_no, code=order.verification_code,
                                          confirm_with_issuer=True)
        elif order.state not in ISSUED_OR_LATER:
            row["problem"] = row["problem"] or f"no letter yet ({order.state.value}, {order.last_error or 'waiting'})"
        rows.append(row)
    return rows


def _person_of(result: DemoResult, org_id: int):
    key = next(k for k, org in result.orgs.items() if org.id == org_id)
    return result.people[f"{key}@demo.ebid"]


def sme_waiver(result: DemoResult, market: Market) -> BondWaiver | None:
    """Bidder 5 (an SME) uses the SME waiver for lot 1 if the tender's policy offers it."""
    tender = result.tender
    org, actor = _bidder(result, WAIVER_BIDDER)
    lot = tender.lots[WAIVER_LOT]
    existing = db.session.scalar(select(BondWaiver).where(BondWaiver.lot_id == lot.id, BondWaiver.bidder_id == org.id))
    if existing is not None:
        return existing
    requirement = requirement_for(org, tender, lot)
    if requirement.waiver_kind is None:
        market.lines.append(f"{org.name}: no waiver for lot {lot.code} ({requirement.waiver_refusal})")
        return None
    try:
        waiver = use_waiver(actor, tender, lot, requirement.waiver_kind, WAIVER_STATEMENT)
    except DomainError as exc:
        db.session.rollback()
        market.lines.append(f"{org.name}: waiver refused: {exc.to_dict()['message']}")
        return None
    db.session.commit()
    return waiver


# -- the whole part ----------------------------------------------------------------------------------

def run_guarantees(result: DemoResult, *, host: str = "127.0.0.1", port: int = 5000,
                   issuer_ports: tuple[int, ...] | None = None, timeout: float = WAIT_SECONDS) -> Market:
    """Open the market, buy, bind and verify, use the waiver, print it all; return the running services."""
    market = open_market(host, port, issuer_ports)
    try:
        ids = buy(result, market)
        orders = wait_for_letters(ids, timeout)
        market.rows = bind_and_verify(result, orders)
        market.waiver = sme_waiver(result, market)
        print_guarantees(market, market.rows, market.waiver, f"http://{host}:{port}")
    except BaseException:
        market.stop()
        raise
    market.stop_platform()
    return market


def print_guarantees(market: Market, rows: list[dict], waiver: BondWaiver | None, base_url: str) -> None:
    click.echo("\n== e-guarantees (电子保函) ==")
    for line in market.lines:
        click.echo(f"  - {line}")
    for service in market.issuers:
        click.echo(f"  issuer {service.name} listening on {service.url}")
    for row in rows:
        order = row["order"]
        report = row["report"]
        verdict = "-" if report is None else ("verified ✓" if report.ok else "NOT verified ✗ " + "; ".join(
            c.text for c in report.failures))
        click.echo(f"  {order.bidder.name} · lot {order.lot.code} · {order.issuer.code} "
                   f"{order.rate_permille.normalize()}‰ · premium {order.premium} CNY · "
                   f"{order.guarantee_no or order.order_no} ({order.state.value}"
                   f"{', bound to the bid' if row['bound'] else ''}) · {verdict}")
        if row["problem"]:
            click.echo(f"      {row['problem']}")
    if waiver is not None:
        click.echo(f"  {waiver.bidder.name} · lot {waiver.lot.code} · {waiver.kind.value} waiver, bond "
                   f"{waiver.bond_amount} CNY waived")
    at = beijing(now())
    for label in (f"{at:%Y-%m}", f"{at:%Y}"):
        f = figures_for(parse_period(label))
        click.echo(f"  figures {label}: {f.guarantees_issued} letters, {f.guaranteed_amount} CNY guaranteed "
                   f"(working capital not locked in cash), premiums {f.premiums_paid} CNY paid, "
                   f"{f.premiums_saved} CNY saved vs the reference rate, {f.waivers} waivers "
                   f"({f.bond_waived} CNY)")
    click.echo(f"  pages: {base_url}/guarantees/figures · {base_url}/guarantees/verify · "
               f"{base_url}/my/guarantees (log in as bidder1@demo.ebid)")


__all__ = ["ISSUERS", "Market", "run_guarantees"]
