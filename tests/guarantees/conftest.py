"""Fixtures for the e-guarantee tests: issuers with their own CA and keys, bidders, a published tender,
signed test letters (reportlab + pyHanko PAdES), signed callbacks, and a stub issuer HTTP server."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko_certvalidator.registry import SimpleCertificateStore
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas
from sqlalchemy import func, select

from core.actor import Actor
from core.audit import AuditEvent
from core.clock import now
from core.db import db
from core.identity.access import actor_for
from core.identity.models import OrganisationKind
from core.identity.tokens import issue_api_token
from core.pdf import CJK_FONT_PATH
from guarantees import protocol
from guarantees.models import GuaranteeOrder, OutboundMessage
from guarantees.services import add_product, admit_issuer, set_rate_policy

ADMIN = Actor.system(source="tests")
FONT = str(CJK_FONT_PATH)  # the shipped font: the tests must not depend on a system font


# -- keys and certificates ---------------------------------------------------------------------------

def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, cn)])


def _cert(subject: str, key, issuer_name: x509.Name, issuer_key, *, ca: bool, days: int = 3650) -> x509.Certificate:
    start = datetime.now(UTC) - timedelta(days=1)
    usage = x509.KeyUsage(digital_signature=not ca, content_commitment=not ca, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                          encipher_only=False, decipher_only=False)
    return (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .sign(issuer_key, hashes.SHA256()))


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class IssuerKeys:
    """An issuer's own CA, its letter-signing certificate and its protocol message key."""

    code: str
    ca_key: ec.EllipticCurvePrivateKey
    ca_cert: x509.Certificate
    letter_key: ec.EllipticCurvePrivateKey
    letter_cert: x509.Certificate
    message_key: ec.EllipticCurvePrivateKey
    message_cert: x509.Certificate

    @classmethod
    def make(cls, code: str) -> IssuerKeys:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _cert(f"{code} Root CA", ca_key, _name(f"{code} Root CA"), ca_key, ca=True)
        letter_key = ec.generate_private_key(ec.SECP256R1())
        letter_cert = _cert(f"{code} letters", letter_key, ca_cert.subject, ca_key, ca=False)
        message_key = ec.generate_private_key(ec.SECP256R1())
        message_cert = _cert(f"{code} messages", message_key, ca_cert.subject, ca_key, ca=False)
        return cls(code, ca_key, ca_cert, letter_key, letter_cert, message_key, message_cert)


def letter_pdf(keys: IssuerKeys, lines: list[str], *, code: str = "ABCDEFGH23", signer: IssuerKeys | None = None,
               subfilter=fields.SigSeedSubFilter.PADES) -> bytes:
    """A one-page letter with an embedded CJK font, PAdES-signed by the issuer's letter certificate."""
    if "WQY" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("WQY", FONT, subfontIndex=0))
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4)
    page.setFont("WQY", 12)
    page.drawString(72, 800, "投标保函 Bid guarantee")
    for i, line in enumerate([*lines, f"验真码 Verification code: {code}"]):
        page.drawString(72, 770 - 18 * i, line)
    page.setTitle("投标保函")
    page.save()
    signing = signer or keys
    signer_obj = signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(signing.letter_cert.public_bytes(serialization.Encoding.DER)),
        signing_key=asn1_keys.PrivateKeyInfo.load(signing.letter_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())),
        cert_registry=SimpleCertificateStore.from_certs(
            [asn1_x509.Certificate.load(signing.ca_cert.public_bytes(serialization.Encoding.DER))]))
    meta = signers.PdfSignatureMetadata(field_name="IssuerSeal", subfilter=subfilter, md_algorithm="sha256")
    return signers.PdfSigner(meta, signer_obj).sign_pdf(IncrementalPdfFileWriter(io.BytesIO(out.getvalue()))).getvalue()


# -- the market --------------------------------------------------------------------------------------

@dataclass
class Market:
    """Issuers admitted on the platform with one product each, and their keys."""

    keys: dict[str, IssuerKeys] = field(default_factory=dict)
    issuers: dict = field(default_factory=dict)
    products: dict = field(default_factory=dict)


@pytest.fixture
def make_issuer(app, create_org):
    """Admit an issuer (own CA and keys) with one product; returns (issuer, product, keys)."""
    def make(code: str = "BANK1", *, kind: str = "bank", url: str = "http://127.0.0.1:9/api", rate: str = "0.8",
             minimum_fee: str = "300.00", maximum_fee: str | None = None, extra_days: int = 0):
        keys = IssuerKeys.make(code)
        org = create_org(kind=OrganisationKind.ISSUER, name=f"{code} Guarantee Co.")
        issuer = admit_issuer(ADMIN, org, code=code, kind=kind, api_base_url=url,
                              message_cert_pem=pem(keys.message_cert), letter_trust_root_pem=pem(keys.ca_cert))
        product = add_product(ADMIN, issuer, code=f"{code}-BID", name=f"{code} bid guarantee",
                              minimum_fee=minimum_fee, rate_permille=rate, maximum_fee=maximum_fee,
                              extra_validity_days=extra_days)
        db.session.commit()
        return issuer, product, keys
    return make


@pytest.fixture
def policy(app):
    """The platform's rate policy: cap 1.0‰, reference 1.5‰ (the Qingdao 2024 figures)."""
    result, _ = set_rate_policy(ADMIN, "1.0", "1.5")
    db.session.commit()
    return result


@pytest.fixture
def create_bidder(create_org, create_person):
    """A bidder organisation with one member; returns (organisation, person, actor)."""
    def create(**org_overrides):
        org = create_org(kind=OrganisationKind.COMPANY, **org_overrides)
        person = create_person(roles=("bidder",), organisation=org)
        db.session.commit()
        return org, person, actor_for(person, "bidder", org.id)
    return create


@pytest.fixture
def bidder(create_bidder):
    return create_bidder()


@pytest.fixture
def tender(create_tender):
    """A published works tender: one lot (bond 20 000.00 CNY), deadline in 25 days, 90 days validity."""
    result = create_tender(publish=True)
    db.session.commit()
    return result


@pytest.fixture
def api_as(app):
    """A test client acting as ``person`` through an API token (``Authorization: Bearer ...``)."""
    def make(person):
        _, plaintext = issue_api_token(actor_for(person), person, "tests")
        db.session.commit()
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {plaintext}"
        return client
    return make


def staff(tender):
    return actor_for(tender.created_by, "tenderer", tender.tenderer_id)


# -- callbacks ---------------------------------------------------------------------------------------

def signed(keys: IssuerKeys, type_: str, order_no: str, data: dict, *, at: datetime | None = None,
           nonce: str | None = None, sender: str | None = None) -> dict:
    return protocol.sign_message(keys.message_key, type_, sender or keys.code, order_no, data,
                                 now=at or now(), nonce=nonce)


def post(client, message: dict):
    return client.post(protocol.CALLBACK_PATH, data=json.dumps(message), content_type="application/json")


def approve(client, keys: IssuerKeys, order: GuaranteeOrder, *, guarantee_no: str = "GN-0001",
            issued_at: datetime | None = None, valid_until: datetime | None = None):
    issued_at = issued_at or now()
    until = valid_until or (order.tender.bid_deadline_at + timedelta(days=order.tender.bid_validity_days + 1))
    return post(client, signed(keys, protocol.RESULT, order.order_no, {
        "status": "approved", "reason": "", "guarantee_no": guarantee_no, "issued_at": issued_at,
        "valid_from": issued_at, "valid_until": until}))


def letter_message(keys: IssuerKeys, order: GuaranteeOrder, pdf: bytes, *, guarantee_no: str = "GN-0001",
                   code: str = "ABCDEFGH23", **extra) -> dict:
    return signed(keys, protocol.LETTER, order.order_no, {
        "guarantee_no": guarantee_no, "filename": f"{guarantee_no}.pdf",
        "pdf_base64": base64.b64encode(pdf).decode(), "sha256": hashlib.sha256(pdf).hexdigest(),
        "verification_code": code, **extra})


def issue(client, keys: IssuerKeys, order: GuaranteeOrder, *, guarantee_no: str = "GN-0001",
          code: str = "ABCDEFGH23", **approve_kwargs) -> bytes:
    """Approve the order and deliver its signed letter through the callback endpoint; return the PDF."""
    assert approve(client, keys, order, guarantee_no=guarantee_no, **approve_kwargs).status_code == 200
    pdf = letter_pdf(keys, [f"No. {guarantee_no}", f"Order {order.order_no}"], code=code)
    response = post(client, letter_message(keys, order, pdf, guarantee_no=guarantee_no, code=code))
    assert response.status_code == 200, response.get_json()
    db.session.expire_all()
    return pdf


# -- a stub issuer -----------------------------------------------------------------------------------

class StubIssuer:
    """A local HTTP issuer on 127.0.0.1 that records what it receives and answers 202 (or ``status``)."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.received: list[tuple[str, dict]] = []
        self.status = 202
        self.get_body: bytes = b"{}"  # what GET (the public letter registry) answers
        self.gets: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> StubIssuer:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                stub.received.append((self.path, json.loads(body)))
                payload = {"accepted": True} if stub.status < 300 else {"code": "refused", "message": "no"}
                data = json.dumps(payload).encode()
                self.send_response(stub.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                stub.gets.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(stub.get_body)))
                self.end_headers()
                self.wfile.write(stub.get_body)

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def types(self) -> list[str]:
        return [message["type"] for _, message in self.received]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def stub_issuer():
    stub = StubIssuer().start()
    yield stub
    stub.stop()


@pytest.fixture
def market(make_issuer, stub_issuer, policy):
    """One admitted bank reachable at the stub issuer, product at 0.8‰ (minimum 300.00)."""
    issuer, product, keys = make_issuer("BANK1", url=stub_issuer.url)
    return issuer, product, keys


# -- snapshots ---------------------------------------------------------------------------------------

def snapshot() -> dict:
    """Order states, outbox rows and the audit head: what a refused or absorbed callback must not touch."""
    db.session.expire_all()
    orders = [(o.order_no, o.state.value, o.guarantee_no, o.letter_sha256, o.version)
              for o in db.session.scalars(select(GuaranteeOrder).order_by(GuaranteeOrder.id))]
    outbox = db.session.scalar(select(func.count()).select_from(OutboundMessage))
    head = db.session.scalar(select(AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1))
    return {"orders": orders, "outbox": outbox, "audit": head}


def money(text: str) -> Decimal:
    return Decimal(text)
