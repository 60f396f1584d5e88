"""The reference issuer's web app (模拟出函机构): a bank's guarantee system speaking the issuer protocol.

Its own Flask app, never the platform's (it imports nothing from ``ebid``): run it with
``ebid issuer-sim --code BANK1 ...`` or build it in tests with :func:`create_app`.

Endpoints (below the issuer's ``api_base_url``)::

    POST /orders          OrderApply        -> 202 {"accepted": true}, underwritten in the background
    POST /orders/cancel   OrderCancel       -> 200 {"cancelled": true} (until the letter is issued)
    POST /releases        Release           -> 202, then a ReleaseNotify callback
    POST /claims          Claim             -> 202, then a ClaimResult callback (paid or denied)
    POST /orders/reveal   DecryptionNotice  -> 202, then a second Letter callback (sealed letters)
    GET  /letters/<no>    public registry   -> a signed LetterStatus message {guarantee_no, sha256, status}
    GET  /                who this issuer is, with its message certificate and CA (PEM)

Every POST is refused unless it passes the protocol checks (known sender, signature, timestamp within
300 s, fresh nonce, known order). ``failure_rate`` answers that fraction of requests with 503 before
anything is read or recorded.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from flask import Flask, jsonify, request
from flask_babel import Babel
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException

from core.clock import now
from guarantees import protocol
from guarantees.issuer_sim.config import SimConfig
from guarantees.issuer_sim.keys import IssuerKeys, load_or_create_keys
from guarantees.issuer_sim.service import IssuerService
from guarantees.issuer_sim.store import SqliteNonceStore, Store
from guarantees.issuer_sim.worker import Worker
from guarantees.protocol import ProtocolError

TRANSLATIONS_DIR = Path(__file__).resolve().parents[2] / "translations"
DATABASE_FILE = "issuer.sqlite3"


@dataclass
class Simulator:
    """The parts of one running issuer (``app.extensions["issuer_sim"]``)."""

    config: SimConfig
    store: Store
    keys: IssuerKeys
    service: IssuerService
    worker: Worker
    keys_created: bool

    def close(self) -> None:
        self.worker.stop()
        self.store.close()


def _pem(cert) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def create_app(config: SimConfig, *, start_worker: bool = True) -> Flask:
    """Build the simulator app: keys (made on first start), store, routes and the background worker."""
    app = Flask("guarantees.issuer_sim")
    app.config.update(BABEL_DEFAULT_LOCALE=config.locale, BABEL_DEFAULT_TIMEZONE="Asia/Shanghai",
                      BABEL_TRANSLATION_DIRECTORIES=str(TRANSLATIONS_DIR), MAX_CONTENT_LENGTH=32 * 1024 * 1024)
    Babel(app, locale_selector=lambda: config.locale)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    keys, created = load_or_create_keys(config.data_dir, code=config.code, name=config.name, now=now(),
                                        uscc=config.uscc)
    store = Store(config.data_dir / DATABASE_FILE)
    service = IssuerService(config, store, keys)
    worker = Worker(app, service)
    service.wake = worker.wake
    app.extensions["issuer_sim"] = Simulator(config, store, keys, service, worker, created)
    nonces = SqliteNonceStore(store)
    rng = random.Random(config.seed)

    def key_for_sender(sender: str):
        return config.platform_public_key if sender == config.platform_id else None

    def order_known(sender: str, order_no: str) -> bool:
        return store.order(order_no) is not None

    def error(code: str, message, status: int):
        return jsonify({"code": code, "message": str(message), "fields": {}}), status

    @app.before_request
    def simulate_failures():
        if config.failure_rate and rng.random() < config.failure_rate:
            response, status = error("unavailable", _l("The issuer's system is busy; try again later."), 503)
            response.headers["Retry-After"] = "1"
            return response, status
        return None

    @app.errorhandler(ProtocolError)
    def protocol_error(exc: ProtocolError):
        body = exc.to_dict()
        return jsonify(body), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return error(exc.name.lower().replace(" ", "_"), exc.description, exc.code or 500)

    def receive(message_type: str, handler):
        received = protocol.open_message(
            request.get_data(cache=False), key_for_sender=key_for_sender, nonces=nonces, now=now(),
            order_known=order_known, allowed_types=(message_type,))
        status, body = handler(received)
        return jsonify(body), status

    @app.post("/orders")
    def order_apply():
        return receive(protocol.ORDER_APPLY, service.apply)

    @app.post("/orders/cancel")
    def order_cancel():
        return receive(protocol.ORDER_CANCEL, service.cancel)

    @app.post("/releases")
    def release():
        return receive(protocol.RELEASE, service.release)

    @app.post("/claims")
    def claim():
        return receive(protocol.CLAIM, service.claim)

    @app.post("/orders/reveal")
    def decryption_notice():
        return receive(protocol.DECRYPTION_NOTICE, service.reveal_request)

    @app.get("/letters/<guarantee_no>")
    def letter_status(guarantee_no: str):
        entry = service.registry_entry(guarantee_no)
        if entry is None:
            return error("unknown_guarantee", _l("There is no guarantee %(number)s at this issuer.",
                                                 number=guarantee_no[:60]), 404)
        return jsonify(entry)

    @app.get("/")
    def about():
        return jsonify({"code": config.code, "name": config.name, "kind": config.kind,
                        "message_certificate": _pem(keys.message_cert), "ca_certificate": _pem(keys.ca_cert)})

    if start_worker:
        worker.start()
    return app
