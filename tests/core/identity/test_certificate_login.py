"""Certificate login: sign the server's nonce with the certified key, get a short-lived API token."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from core.clock import clock
from core.db import db
from core.identity import ca as platform_ca
from core.identity import get_provider, providers, revoke_role
from core.identity.providers import CertificateProvider, IdentityProvider, PasswordProvider, challenge_message
from crypto import keys
from tests.core.identity.conftest import CA_PASSPHRASE, FAST_KDF, SYSTEM, audit_actions, audit_dump


def answer(client, key, certificate_pem: str, *, nonce: str | None = None, sign_nonce: str | None = None):
    """Ask for a challenge, sign it with ``key`` as the client tool does, and answer it."""
    if nonce is None:
        challenge = client.post("/api/auth/challenge", json={"provider": "certificate"})
        assert challenge.status_code == 201
        body = challenge.get_json()
        nonce = body["nonce"]
        assert body["sign"] == challenge_message(nonce).decode()
    signature = keys.sign(key, challenge_message(sign_nonce or nonce))
    return client.post("/api/auth/certificate", json={
        "nonce": nonce, "certificate": certificate_pem, "signature": base64.b64encode(signature).decode()})


@pytest.fixture
def issued(app, ca, create_person, holder):
    """A person with a platform certificate for a key only their side holds."""
    person = create_person(name="赵强")
    h = holder()
    row = platform_ca.issue_certificate(SYSTEM, h.csr("x"), person, ca=ca)
    db.session.commit()
    return person, h.key, row


def test_happy_path_returns_a_short_lived_token(client, issued):
    person, key, row = issued
    response = answer(client, key, row.pem)
    assert response.status_code == 201
    body = response.get_json()
    assert body["person"]["id"] == person.id and body["organisation_uscc"] is None
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200 and me.get_json()["id"] == person.id
    clock.travel(timedelta(minutes=61))
    assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {body['token']}"}).status_code == 401
    assert audit_actions()[-2:] == ["login", "api_token_issued"]
    assert body["token"] not in audit_dump()


def test_organisation_certificate_asserts_the_uscc(client, app, ca, create_org, create_person, holder):
    org = create_org()
    person = create_person(roles=("bidder",), organisation=org)
    h = holder()
    row = platform_ca.issue_certificate(SYSTEM, h.csr("x", uscc=org.uscc), person, org, ca=ca)
    db.session.commit()
    assert answer(client, h.key, row.pem).get_json()["organisation_uscc"] == org.uscc
    revoke_role(SYSTEM, person, "bidder", org)  # left the company: the company's certificate stops working
    db.session.commit()
    refused = answer(client, h.key, row.pem)
    assert refused.status_code == 401 and refused.get_json()["code"] == "not_a_member"


def test_revoked_certificate_is_refused(client, issued):
    _, key, row = issued
    platform_ca.revoke_certificate(SYSTEM, row, "keyCompromise")
    db.session.commit()
    response = answer(client, key, row.pem)
    assert response.status_code == 401
    assert response.get_json()["code"] == "certificate_revoked" and row.serial in response.get_json()["message"]
    assert audit_actions()[-1] == "login_failed"


def test_certificate_from_a_foreign_ca_is_refused(client, app, ca, tmp_path, create_person, holder):
    foreign = platform_ca.init_ca(SYSTEM, tmp_path / "foreign", CA_PASSPHRASE, kdf_log2_n=FAST_KDF)
    h = holder()
    row = platform_ca.issue_certificate(SYSTEM, h.csr("x"), create_person(), ca=foreign)  # even if recorded
    db.session.commit()
    response = answer(client, h.key, row.pem)
    assert response.status_code == 401 and response.get_json()["code"] == "certificate_untrusted"


def test_expired_certificate_is_refused(client, app, ca, create_person, holder):
    h = holder()
    row = platform_ca.issue_certificate(SYSTEM, h.csr("x"), create_person(), ca=ca, validity_days=1)
    db.session.commit()
    clock.travel(timedelta(days=2))
    assert answer(client, h.key, row.pem).get_json()["code"] == "certificate_expired"


def test_signature_by_another_key_is_refused(client, issued):
    _, _, row = issued
    response = answer(client, keys.generate_private_key(), row.pem)
    assert response.status_code == 401 and response.get_json()["code"] == "bad_signature"


def test_nonce_is_single_use_and_expires(client, issued):
    _, key, row = issued
    nonce = client.post("/api/auth/challenge", json={}).get_json()["nonce"]
    assert answer(client, key, row.pem, nonce=nonce).status_code == 201
    replay = answer(client, key, row.pem, nonce=nonce)
    assert replay.status_code == 401 and replay.get_json()["code"] == "challenge_unknown"
    late = client.post("/api/auth/challenge", json={}).get_json()["nonce"]
    clock.travel(timedelta(minutes=6))
    assert answer(client, key, row.pem, nonce=late).get_json()["code"] == "challenge_expired"
    assert answer(client, key, row.pem, nonce="made-up").get_json()["code"] == "challenge_unknown"


def test_signing_another_nonce_is_refused(client, issued):
    _, key, row = issued
    response = answer(client, key, row.pem, sign_nonce="some other nonce")
    assert response.get_json()["code"] == "bad_signature"


def test_disabled_holder_is_refused(client, issued):
    person, key, row = issued
    person.is_enabled = False
    db.session.commit()
    assert answer(client, key, row.pem).get_json()["code"] == "disabled"


def test_login_api_needs_no_csrf_token_and_is_rate_limited(csrf_app, issued, rate_limited):
    client = csrf_app.test_client()
    _, key, row = issued
    assert answer(client, key, row.pem).status_code == 201  # no cookie, no CSRF token: nothing to forge
    codes = [client.post("/api/auth/challenge", json={}).status_code for _ in range(10)]
    assert codes[-1] == 429


def test_registry_lists_both_providers():
    names = {p.name for p in providers()}
    assert {"password", "certificate"} <= names
    assert isinstance(get_provider("password"), PasswordProvider)
    assert isinstance(get_provider("certificate"), CertificateProvider)
    assert all(isinstance(p, IdentityProvider) and str(p.display_name) for p in providers())


def test_unknown_provider_is_named(client):
    response = client.post("/api/auth/challenge", json={"provider": "e_license"})
    assert response.status_code == 401 and "e_license" in response.get_json()["message"]
