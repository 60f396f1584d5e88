"""Fixtures of the bidder-client tests: the real app served on 127.0.0.1, a platform CA, a published tender.

The client talks HTTP to a werkzeug server running the test app in a thread (the same database and data
folder as the test), exactly as a bidder's machine talks to the platform. ``restart`` stops a server and
serves a new app built on the same settings, as a platform restart would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from flask import Flask, has_app_context
from werkzeug.serving import BaseWSGIServer, make_server

from core.actor import Actor
from core.db import db
from core.identity.access import actor_for
from core.identity.ca import issue_certificate
from core.identity.models import Organisation, OrganisationKind, Person
from core.identity.tokens import issue_api_token
from crypto import keys
from ebid.app import create_app
from ebid.client.cli import client_cli

SYSTEM = Actor.system(source="test")
KEY_PASSPHRASE = "bidder key passphrase 1"
FAST_KDF = keys.MIN_SCRYPT_LOG2_N


class LiveServer:
    """A served app; ``url`` is its address."""

    def __init__(self, app: Callable, port: int = 0) -> None:
        self.app = app
        self.server: BaseWSGIServer = make_server("127.0.0.1", port, app, threaded=True)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class FailAfter:
    """WSGI middleware: let ``n`` chunk uploads through, then answer 503 to every request (the server going down)."""

    def __init__(self, app, n: int) -> None:
        self.app, self.n, self.chunks = app, n, 0

    def __call__(self, environ, start_response):
        if self.chunks >= self.n:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"down for maintenance"]
        if environ["REQUEST_METHOD"] == "PUT" and environ["PATH_INFO"].startswith("/api/uploads/"):
            self.chunks += 1
        return self.app(environ, start_response)


@pytest.fixture
def live(app, settings):
    """Serve the test app; ``live.restart()`` replaces it by a fresh app on the same data folder and database."""
    servers: list[LiveServer] = []
    extra_apps: list[Flask] = []

    class Live:
        server: LiveServer

        def start(self, application: Callable | None = None, port: int = 0) -> LiveServer:
            self.server = LiveServer(application or app, port)
            servers.append(self.server)
            return self.server

        @property
        def url(self) -> str:
            return self.server.url

        def restart(self) -> LiveServer:
            port = self.server.port
            self.server.stop()
            fresh = create_app(settings)
            fresh.config.update(WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=False)
            extra_apps.append(fresh)
            return self.start(fresh, port)

    handle = Live()
    handle.start()
    yield handle
    for server in servers:
        if server.thread.is_alive():
            server.stop()
    for extra in extra_apps:
        with extra.app_context():
            db.engine.dispose()


@dataclass
class World:
    tender_id: int
    tender_code: str
    lots: list[tuple[int, str]]  # (id, code)
    org: Organisation
    bidder: Person
    token: str
    custodian_keys: list


@pytest.fixture
def world(app, create_custodian, create_org, create_person, create_tender) -> Callable[..., World]:
    """A published tender with two lots (opening key shared by two custodians) and a bidder with an API token."""
    def make(decryption_mode: str = "bidder_then_custodians") -> World:
        holders = [create_custodian() for _ in range(2)]
        custodians, custodian_keys = [p for p, _k in holders], [k for _p, k in holders]
        tender = create_tender(publish=True, decryption_mode=decryption_mode, custodian_threshold=2,
                               custodian_ids=[c.id for c in custodians],
                               lots=[{"title": "Roads", "estimated_price": Decimal("1000000.00"),
                                      "bond_amount": Decimal("20000.00")},
                                     {"title": "Lighting", "estimated_price": Decimal("500000.00"),
                                      "bond_amount": Decimal("10000.00")}])
        org = create_org(kind=OrganisationKind.COMPANY, name="青岛海川路桥工程有限公司")
        bidder = create_person(roles=("bidder",), organisation=org)
        _, token = issue_api_token(actor_for(bidder), bidder, "bidder client")
        db.session.commit()
        return World(tender.id, tender.code, [(lot.id, lot.code) for lot in tender.lots], org, bidder, token,
                     custodian_keys)
    return make


@pytest.fixture
def run(tmp_path):
    """Invoke ``ebid client ...``; the client's state lives in the test's own folder."""
    home = tmp_path / "client-home"

    def invoke(*args: str, input: str | None = None, env: dict | None = None) -> Result:
        result = CliRunner().invoke(client_cli, list(args), input=input,
                                    env={"EBID_CLIENT_HOME": str(home), "EBID_LANG": "en", **(env or {})},
                                    catch_exceptions=False)
        if has_app_context():  # the client itself never needs the platform's app
            db.session.expire_all()
        return result
    invoke.home = home
    return invoke


@pytest.fixture
def passphrase_file(tmp_path) -> Path:
    path = tmp_path / "passphrase.txt"
    path.write_text(KEY_PASSPHRASE + "\n", encoding="utf-8")
    return path


@pytest.fixture
def bidder_keys(run, platform_ca, tmp_path, passphrase_file) -> Callable[[World], tuple[Path, Path]]:
    """keygen and csr through the CLI, the certificate issued by the platform CA: returns (key, cert) paths."""
    def make(world: World) -> tuple[Path, Path]:
        folder = tmp_path / "keys"
        result = run("keygen", "--out", str(folder), "--passphrase-file", str(passphrase_file),
                     "--kdf-cost", str(FAST_KDF))
        assert result.exit_code == 0, result.output
        csr = tmp_path / "org.csr"
        result = run("csr", "--key", str(folder / "bidder.key"), "--org-uscc", world.org.uscc, "--name",
                     world.org.name, "--out", str(csr), "--passphrase-file", str(passphrase_file))
        assert result.exit_code == 0, result.output
        row = issue_certificate(SYSTEM, csr.read_bytes(), person=world.bidder, organisation=world.org, ca=platform_ca)
        db.session.commit()
        cert = tmp_path / "org.cert.pem"
        cert.write_text(row.pem)
        return folder / "bidder.key", cert
    return make


@pytest.fixture
def make_bid(run, tmp_path) -> Callable[..., Path]:
    """``ebid client build`` with a document; returns the bid ZIP."""
    def make(lot_code: str, price: str = "12345678.00", *, name: str = "bid.zip", doc_bytes: bytes = b"",
             extra: tuple[str, ...] = ()) -> Path:
        doc = tmp_path / f"{name}-技术标.pdf"
        doc.write_bytes(doc_bytes or b"%PDF-1.4 technical proposal\n" * 50)
        out = tmp_path / name
        result = run("build", "--lot", lot_code, "--price", price, "--duration", "365", "--quality", "合格",
                     "--manager", "张伟", "--manager-cert", "鲁1372020201234", "--doc", str(doc), "--out", str(out),
                     *extra)
        assert result.exit_code == 0, result.output
        return out
    return make


@pytest.fixture
def seal(run, passphrase_file, tmp_path) -> Callable[..., Result]:
    def do(world: World, live_url: str, key: Path, cert: Path, bid: Path, lot_index: int = 0, *,
           out: str = "bid.ebe", extra: tuple[str, ...] = ()) -> Result:
        return run("seal", "--tender", str(world.tender_id), "--lot", str(world.lots[lot_index][0]), "--bid", str(bid),
                   "--key", str(key), "--cert", str(cert), "--server", live_url, "--token", world.token,
                   "--out", str(tmp_path / out), "--passphrase-file", str(passphrase_file), *extra)
    return do
