"""``ebid guarantees``: admit an issuer, add products, set rates and the cap, the platform certificate."""

from __future__ import annotations

from decimal import Decimal as D

from sqlalchemy import select

from core.audit import AuditEvent
from core.db import db
from guarantees import apply_for_guarantee, issuer_by_code, platform_certificate_pem, protocol, rate_in_force
from guarantees.models import GuaranteeProduct
from tests.factories import make_uscc
from tests.guarantees.conftest import IssuerKeys, pem


def run(app, *args):
    result = app.test_cli_runner().invoke(args=["guarantees", *args])
    db.session.expire_all()
    return result


def test_admin_commands(app, tmp_path):
    keys = IssuerKeys.make("ICBC-QD")
    (tmp_path / "msg.pem").write_text(pem(keys.message_cert))
    (tmp_path / "ca.pem").write_text(pem(keys.ca_cert))
    result = run(app, "add-issuer", "--code", "ICBC-QD", "--name", "ICBC Qingdao", "--uscc", make_uscc(9001),
                 "--kind", "bank", "--api-url", "https://guarantee.example/api/", "--cert", str(tmp_path / "msg.pem"),
                 "--trust-root", str(tmp_path / "ca.pem"))
    assert result.exit_code == 0, result.output
    issuer = issuer_by_code("ICBC-QD")
    assert issuer.api_base_url == "https://guarantee.example/api" and issuer.organisation.kind.value == "issuer"

    assert run(app, "set-cap", "--cap", "1.0", "--reference", "1.5").exit_code == 0
    refused = run(app, "add-product", "--issuer", "ICBC-QD", "--code", "BID", "--name", "Bid guarantee",
                  "--rate", "1.2", "--min-fee", "300")
    assert refused.exit_code == 1 and "1.2‰ is above the platform's cap of 1‰" in refused.output
    assert db.session.scalar(select(GuaranteeProduct)) is None
    ok = run(app, "add-product", "--issuer", "ICBC-QD", "--code", "BID", "--name", "Bid guarantee",
             "--rate", "0.9", "--min-fee", "300")
    assert ok.exit_code == 0, ok.output
    assert run(app, "set-rate", "--issuer", "ICBC-QD", "--product", "BID", "--rate", "0.7").exit_code == 0
    product = db.session.scalar(select(GuaranteeProduct))
    assert rate_in_force(product).rate_permille == D("0.7") and len(product.rates) == 2

    lowered = run(app, "set-cap", "--cap", "0.6", "--reference", "1.5")
    assert lowered.exit_code == 0 and "no longer offered: ICBC-QD/BID (0.7000‰)" in lowered.output
    wrong = run(app, "add-issuer", "--code", "X1", "--name", "X", "--uscc", make_uscc(9002), "--kind", "bank",
                "--api-url", "ftp://nope", "--cert", str(tmp_path / "msg.pem"), "--trust-root", str(tmp_path / "msg.pem"))
    assert wrong.exit_code == 1 and issuer_by_code("X1") is None
    actions = [e.action for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
    assert actions.count("guarantee.rate_policy.set") == 2 and "guarantee.issuer.admit" in actions


def test_platform_certificate(app):
    result = run(app, "platform-cert")
    assert result.exit_code == 0 and "BEGIN CERTIFICATE" in result.output
    key = protocol.public_key_from_pem(platform_certificate_pem())
    assert platform_certificate_pem() == platform_certificate_pem()  # made once, then reused
    assert key.curve.name == "secp256r1"
    key_file = app.extensions["ebid.settings"].keys_dir / "guarantee-platform.key.pem"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"


def test_outbox_listing(app, make_issuer, policy, tender, bidder):
    _, product, _ = make_issuer("DOWN", url="http://127.0.0.1:9/api")
    order = apply_for_guarantee(bidder[2], tender, tender.lots[0], product, "plain")
    db.session.commit()
    result = run(app, "outbox")
    assert result.exit_code == 0 and order.order_no in result.output and "attempts=1" in result.output
