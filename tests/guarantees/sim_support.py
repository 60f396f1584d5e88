"""Shared pieces of the reference-issuer tests: servers in threads, a fake platform, signed requests."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from core.clock import now
from guarantees import protocol

PLATFORM_ID = "ebid-platform"
CALLBACKS = (protocol.RESULT, protocol.LETTER, protocol.RELEASE_NOTIFY, protocol.CLAIM_RESULT)
BIDDER = {"name": "华北路桥工程有限公司", "uscc": "91110000MA01234567"}
TENDERER = {"name": "北京市交通建设管理中心", "uscc": "12110000MB0123456X"}


def serve(app) -> tuple[str, object, threading.Thread]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{server.server_port}", server, thread


def stop(server, thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(5)


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def http(method: str, url: str, body: bytes | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


class FakePlatform:
    """Receives callbacks at /api/guarantees/callbacks and checks them like the platform does."""

    def __init__(self):
        self.lock = threading.Lock()
        self.accepted: list[protocol.Received] = []
        self.refusals: list[tuple[int, str]] = []
        self.answer_next: list[int] = []   # statuses to answer before looking at the next callbacks
        self.answer_always: int | None = None
        self.issuer_key = None
        self.nonces = protocol.MemoryNonceStore()

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path != protocol.CALLBACK_PATH or request.method != "POST":
            return Response("{}", status=404)(environ, start_response)
        with self.lock:
            forced = self.answer_always or (self.answer_next.pop(0) if self.answer_next else None)
        if forced:
            return Response('{"code": "unavailable"}', status=forced, mimetype="application/json")(
                environ, start_response)
        try:
            msg = protocol.open_message(
                request.get_data(), key_for_sender=lambda s: self.issuer_key if s == "BANK1" else None,
                nonces=self.nonces, now=now(), allowed_types=CALLBACKS)
        except protocol.ProtocolError as exc:
            with self.lock:
                self.refusals.append((exc.status, exc.code))
            return Response(json.dumps(exc.to_dict()), status=exc.status, mimetype="application/json")(
                environ, start_response)
        with self.lock:
            self.accepted.append(msg)
        return Response('{"ok": true}', mimetype="application/json")(environ, start_response)

    def got(self, order_no: str, type_: str | None = None) -> list[protocol.Received]:
        with self.lock:
            return [m for m in self.accepted if m.order_no == order_no and (type_ is None or m.type == type_)]


class Sim:
    """A running simulator and a way to talk to it as the platform."""

    def __init__(self, app, platform_key):
        self.app = app
        self.parts = app.extensions["issuer_sim"]
        self.platform_key = platform_key
        self.url, self._server, self._thread = serve(app)

    def send(self, type_: str, order_no: str, data: dict, *, key=None, sender: str = PLATFORM_ID,
             at=None, nonce: str | None = None) -> tuple[int, dict]:
        msg = protocol.sign_message(key or self.platform_key, type_, sender, order_no, data, now=at or now(),
                                    nonce=nonce)
        return self.post(protocol.ISSUER_PATHS[type_], msg)

    def post(self, path: str, msg: dict) -> tuple[int, dict]:
        return http("POST", self.url + path, protocol.encode(msg))

    def stop(self) -> None:
        stop(self._server, self._thread)
        self.parts.close()


def order(order_no: str, **overrides) -> dict:
    data = {"order_no": order_no, "tender_code": "E1100000001000123001", "tender_title": "快速路改造工程施工总承包",
            "lot_code": "E1100000001000123001001", "lot_title": "第一标段", "bid_deadline": now() + timedelta(days=10),
            "validity_days": 90, "extra_validity_days": 0, "amount": Decimal("125000.00"), "guarantee_type": "plain",
            "beneficiary": TENDERER, "principal": BIDDER, "product_code": "BID-STD", "premium": Decimal("125.00"),
            "rate_permille": Decimal("1.0")}
    data.update(overrides)
    return data


def issued(sim: Sim, platform: FakePlatform, order_no: str, **overrides) -> tuple[protocol.Received, bytes]:
    """Apply, wait for Result and Letter; return the Result and the letter PDF."""
    assert sim.send(protocol.ORDER_APPLY, order_no, order(order_no, **overrides)) == (202, {"accepted": True})
    wait_for(lambda: platform.got(order_no, protocol.LETTER), what=f"the letter of {order_no}")
    result, letter = platform.got(order_no)[:2]
    assert (result.type, letter.type) == (protocol.RESULT, protocol.LETTER)  # in that order
    pdf = base64.b64decode(letter.data["pdf_base64"])
    assert hashlib.sha256(pdf).hexdigest() == letter.data["sha256"]
    return result, pdf


def validate(pdf: bytes, ca_cert):
    trust = asn1_x509.Certificate.load(ca_cert.public_bytes(serialization.Encoding.DER))
    (signature,) = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    return validate_pdf_signature(signature, ValidationContext(trust_roots=[trust], allow_fetching=False))


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) is not installed; apt-get install poppler-utils")
    path = tmp_path / "letter.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


def registry(sim: Sim, number: str) -> dict:
    status, body = http("GET", f"{sim.url}/letters/{number}")
    assert status == 200
    received = protocol.open_message(body, key_for_sender=lambda s: sim.parts.keys.message_cert.public_key(),
                                     nonces=protocol.MemoryNonceStore(), now=now())
    assert received.type == protocol.LETTER_STATUS and received.sender == "BANK1"
    return received.data
