"""Issuer certificate rotation: versions, messages around the rotation, letters issued before and after it."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes

from core.audit import AuditEvent
from core.clock import clock, now
from core.db import db
from core.errors import ValidationFailed
from core.identity.access import actor_for
from guarantees import apply_for_guarantee, protocol, update_issuer, verify_letter
from guarantees.errors import AdminRequired
from guarantees.issuer_certs import message_keys, version_at
from guarantees.models import GuaranteeOrder, Issuer
from tests.guarantees.conftest import ADMIN, IssuerKeys, issue, pem, post, signed

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@dataclass
class V:
    version: int
    valid_from: datetime
    valid_until: datetime | None


VERSIONS = [V(1, T0, T0 + timedelta(days=10)), V(2, T0 + timedelta(days=10), T0 + timedelta(days=20)),
            V(3, T0 + timedelta(days=20), None)]


@pytest.mark.parametrize(("at", "expected"), [
    (T0 - timedelta(seconds=1), 1),              # before the first version: the first
    (T0, 1),
    (T0 + timedelta(days=10) - timedelta(microseconds=1), 1),
    (T0 + timedelta(days=10), 2),                # the boundary belongs to the new version
    (T0 + timedelta(days=19), 2),
    (T0 + timedelta(days=20), 3),
    (T0 + timedelta(days=900), 3),               # the current one has no end
])
def test_version_at(at, expected):
    assert version_at(list(reversed(VERSIONS)), at).version == expected


def test_version_at_without_versions():
    assert version_at([], T0) is None


@pytest.fixture
def frozen(app):
    clock.freeze(now().replace(microsecond=0) + timedelta(seconds=1))  # after the market was made
    yield
    clock.reset()


@pytest.fixture
def order(app, frozen, market, tender, bidder):
    result = apply_for_guarantee(bidder[2], tender, tender.lots[0], market[1], "plain")
    db.session.commit()
    return db.session.get(GuaranteeOrder, result.id)


def _issuer() -> Issuer:
    db.session.expire_all()
    return db.session.scalar(db.select(Issuer).where(Issuer.code == "BANK1"))


def _rotate(new: IssuerKeys, *, compromised: bool = False, url: str | None = None):
    version = update_issuer(ADMIN, _issuer(), message_cert_pem=pem(new.message_cert),
                            letter_trust_root_pem=pem(new.ca_cert), api_base_url=url, reason="annual rotation",
                            compromised=compromised)
    db.session.commit()
    return version


def _duplicate_letter(keys: IssuerKeys, order: GuaranteeOrder, pdf: bytes, at: datetime) -> dict:
    """The letter callback again (absorbed when accepted), signed by ``keys`` and dated ``at``."""
    return signed(keys, protocol.LETTER, order.order_no, {
        "guarantee_no": "GN-0001", "filename": "GN-0001.pdf", "pdf_base64": base64.b64encode(pdf).decode(),
        "sha256": hashlib.sha256(pdf).hexdigest(), "verification_code": "ABCDEFGH23"}, at=at)


def test_admission_records_version_one(market):
    issuer = _issuer()
    (first,) = issuer.certificates
    assert (first.version, first.valid_until, first.revoked) == (1, None, False)
    assert first.message_cert_pem == issuer.message_cert_pem and first.api_base_url == issuer.api_base_url


def test_rotation_keeps_the_past_verifiable_and_refuses_the_retired_key(client, market, order, create_bidder,
                                                                         tender):
    old = market[2]
    pdf = issue(client, old, order)
    clock.travel(timedelta(hours=1))
    rotated_at = now()
    new = IssuerKeys.make("BANK1")
    version = _rotate(new, url="https://new.bank.example/api")
    issuer = _issuer()
    first, second = issuer.certificates
    assert (version.version, second.valid_from, first.valid_until) == (2, rotated_at, rotated_at)
    assert issuer.message_cert_pem == pem(new.message_cert) and issuer.api_base_url == "https://new.bank.example/api"
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "guarantee.issuer.update"))
    assert event is not None and event.summary["reason"] == "annual rotation"

    # the letter issued before the rotation still verifies, under the trust root in force then
    report = verify_letter(guarantee_no="GN-0001", code="ABCDEFGH23")
    assert report.ok, report.to_dict()
    assert verify_letter(pdf_bytes=pdf).ok

    # a message dated before the rotation, signed with the old key, still passes (clock window)
    response = post(client, _duplicate_letter(old, order, pdf, rotated_at - timedelta(seconds=60)))
    assert response.status_code == 200 and response.get_json()["outcome"] == "absorbed"
    # dated after the rotation with the old key: refused, saying why
    response = post(client, _duplicate_letter(old, order, pdf, now()))
    body = response.get_json()
    assert (response.status_code, body["code"]) == (401, "retired_certificate")
    assert "replaced at" in body["message"] and new.message_cert.fingerprint(hashes.SHA256()).hex()[:16] in body["message"]
    # the new key is accepted
    response = post(client, _duplicate_letter(new, order, pdf, now()))
    assert response.status_code == 200 and response.get_json()["outcome"] == "absorbed"
    # a key that was never the issuer's is a plain bad signature
    response = post(client, _duplicate_letter(IssuerKeys.make("BANK1"), order, pdf, now()))
    assert (response.status_code, response.get_json()["code"]) == (401, "bad_signature")

    # a letter issued after the rotation but sealed under the old CA fails, naming the version it chains to
    other = apply_for_guarantee(create_bidder()[2], tender, tender.lots[0], market[1], "plain")
    db.session.commit()
    issue(client, IssuerKeysSigner(new, old), db.session.get(GuaranteeOrder, other.id), guarantee_no="GN-0002",
          code="ABCDEFGH24")
    report = verify_letter(guarantee_no="GN-0002", code="ABCDEFGH24")
    assert not report.ok
    assert "version 1" in report.check("signature").reason


class IssuerKeysSigner(IssuerKeys):
    """Messages signed with ``messages``' key, letters sealed with ``letters``' certificates."""

    def __init__(self, messages: IssuerKeys, letters: IssuerKeys):
        super().__init__(messages.code, letters.ca_key, letters.ca_cert, letters.letter_key, letters.letter_cert,
                         messages.message_key, messages.message_cert)


def test_compromised_key_has_no_grace(client, market, order):
    old = market[2]
    pdf = issue(client, old, order)
    clock.travel(timedelta(hours=1))
    rotated_at = now()
    _rotate(IssuerKeys.make("BANK1"), compromised=True)
    assert _issuer().certificates[0].revoked
    assert len(message_keys(_issuer(), rotated_at - timedelta(seconds=60))) == 1  # the new key only
    response = post(client, _duplicate_letter(old, order, pdf, rotated_at - timedelta(seconds=60)))
    body = response.get_json()
    assert (response.status_code, body["code"]) == (401, "retired_certificate")
    assert "compromised" in body["message"]


def test_message_keys_around_a_rotation(market, frozen):
    start = now()
    clock.travel(timedelta(minutes=10))
    new = IssuerKeys.make("BANK1")
    _rotate(new)
    issuer = _issuer()
    before = message_keys(issuer, start + timedelta(minutes=5))
    after = message_keys(issuer, now() + timedelta(seconds=1))
    assert len(before) == 2 and len(after) == 1
    assert after[0].public_numbers() == new.message_cert.public_key().public_numbers()


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"reason": "annual rotation"}, "message_cert_pem"),                         # nothing changes
    ({"reason": "x"}, "reason"),                                                # no real reason
    ({"reason": "annual rotation", "compromised": True, "api_base_url": "https://x.example/api"},
     "message_cert_pem"),                                                       # compromised but same key
    ({"reason": "annual rotation", "message_cert_pem": "not a pem"}, "message_cert_pem"),
    ({"reason": "annual rotation", "api_base_url": "ftp://bank"}, "api_base_url"),
])
def test_update_refusals(market, kwargs, field):
    with pytest.raises(ValidationFailed) as refused:
        update_issuer(ADMIN, _issuer(), **kwargs)
    assert field in refused.value.fields
    db.session.rollback()
    assert len(_issuer().certificates) == 1


def test_trust_root_must_be_a_ca(market):
    new = IssuerKeys.make("BANK1")
    with pytest.raises(ValidationFailed) as refused:
        update_issuer(ADMIN, _issuer(), letter_trust_root_pem=pem(new.letter_cert), reason="annual rotation")
    assert "CA=true" in refused.value.to_dict()["message"]


def test_only_an_admin_rotates(market, bidder, create_person):
    with pytest.raises(AdminRequired):
        update_issuer(bidder[2], _issuer(), api_base_url="https://x.example/api", reason="annual rotation")
    issuer = _issuer()
    person = create_person(roles=("issuer",), organisation=issuer.organisation)
    db.session.commit()
    with pytest.raises(AdminRequired):  # its own staff manage products, not the certificates the platform trusts
        update_issuer(actor_for(person, "issuer", issuer.organisation_id), _issuer(),
                      api_base_url="https://x.example/api", reason="annual rotation")


def run(app, *args):
    result = app.test_cli_runner().invoke(args=["guarantees", *args])
    db.session.expire_all()
    return result


def test_cli_update_and_list(app, market, tmp_path):
    new = IssuerKeys.make("BANK1")
    cert, root = tmp_path / "message.pem", tmp_path / "ca.pem"
    cert.write_text(pem(new.message_cert))
    root.write_text(pem(new.ca_cert))
    result = run(app, "update-issuer", "--issuer", "BANK1", "--cert", str(cert), "--trust-root", str(root),
                 "--reason", "key ceremony 2026")
    assert result.exit_code == 0, result.output
    assert "certificate version 2" in result.output
    assert _issuer().message_cert_pem == pem(new.message_cert)
    listing = run(app, "issuer-certificates", "--issuer", "BANK1")
    assert listing.exit_code == 0 and "v1 " in listing.output and "current" in listing.output
    assert "key ceremony 2026" in listing.output
    again = run(app, "update-issuer", "--issuer", "BANK1", "--cert", str(cert), "--reason", "same again")
    assert again.exit_code == 1 and "Nothing changes" in again.output
    assert len(_issuer().certificates) == 2
