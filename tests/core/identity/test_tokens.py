"""API tokens: bearer authentication, refusals that say why, CSRF skipped only for token requests."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.actor import Actor
from core.clock import clock, now
from core.db import db
from core.errors import Forbidden, ValidationFailed
from core.identity import ApiToken, issue_api_token, revoke_api_token, set_enabled
from core.identity.tokens import authenticate_api_token, hash_token
from tests.core.identity.conftest import SYSTEM, audit_dump, csrf_token_of, login


def bearer(plaintext: str) -> dict:
    return {"Authorization": f"Bearer {plaintext}"}


@pytest.fixture
def token_of(create_person):
    def make(person=None, **kwargs):
        person = person or create_person()
        token, plaintext = issue_api_token(Actor(person_id=person.id, name=person.name), person, "ci", **kwargs)
        db.session.commit()
        return token, plaintext
    return make


def test_token_authenticates_api_and_pages(client, create_person, token_of):
    person = create_person(name="王磊", roles=("expert",))
    token, plaintext = token_of(person)
    me = client.get("/api/auth/me", headers=bearer(plaintext))
    assert me.status_code == 200
    assert me.get_json()["roles"] == [{"role": "expert", "organisation_uscc": None}]
    assert me.get_json()["id"] == person.id and me.get_json()["authenticated_by"] == "token"
    assert "王磊" in client.get("/account", headers=bearer(plaintext)).get_data(as_text=True)
    db.session.refresh(token)
    assert token.last_used_at is not None
    assert "Set-Cookie" not in me.headers  # a token request opens no session
    assert client.get("/api/auth/me").status_code == 401  # the next request without it is anonymous


def test_plaintext_is_never_stored(app, create_person, token_of):
    token, plaintext = token_of()
    assert re.fullmatch(r"ebid_[A-Za-z0-9_-]{43}", plaintext)
    assert token.token_hash == hash_token(plaintext) and token.prefix == plaintext[:12]
    row = db.session.execute(select(ApiToken.__table__)).one()._asdict()
    assert all(plaintext not in str(value) for value in row.values())
    assert plaintext not in audit_dump()


@pytest.mark.parametrize(("header", "code"), [
    ("Bearer ebid_short", "token_malformed"),
    ("Bearer ", "token_malformed"),
    ("Bearer not-an-ebid-token-at-all-but-long-enough-to-look-real", "token_malformed"),
    ("Bearer ebid_" + "A" * 43, "token_unknown"),
])
def test_malformed_and_unknown_tokens_are_refused(client, header, code):
    response = client.get("/api/auth/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.get_json()["code"] == code


def test_revoked_token_is_refused(client, token_of):
    token, plaintext = token_of()
    revoke_api_token(SYSTEM, token)
    db.session.commit()
    response = client.get("/api/auth/me", headers=bearer(plaintext))
    assert response.status_code == 401
    assert response.get_json()["code"] == "token_revoked" and "revoked" in response.get_json()["message"]


def test_expired_token_is_refused(client, token_of):
    token, plaintext = token_of(expires_at=now() + timedelta(hours=1))
    assert client.get("/api/auth/me", headers=bearer(plaintext)).status_code == 200
    clock.travel(timedelta(hours=1, seconds=1))
    response = client.get("/api/auth/me", headers=bearer(plaintext))
    assert response.status_code == 401 and response.get_json()["code"] == "token_expired"


def test_token_of_a_disabled_person_is_refused(client, create_person, token_of):
    person = create_person()
    _, plaintext = token_of(person)
    set_enabled(SYSTEM, person, False)
    db.session.commit()
    assert client.get("/api/auth/me", headers=bearer(plaintext)).get_json()["code"] == "account_disabled"


def test_bad_token_on_a_page_is_401_not_a_login_redirect(client):
    assert client.get("/account", headers=bearer("ebid_nope")).status_code == 401


def test_token_wins_over_a_cookie_session(client, create_person, token_of):
    create_person(email="cookie@example.test")
    db.session.commit()
    login(client, "cookie@example.test")
    other = create_person(name="Token Holder")
    _, plaintext = token_of(other)
    assert client.get("/api/auth/me", headers=bearer(plaintext)).get_json()["id"] == other.id


def test_token_requests_skip_csrf_cookie_requests_do_not(csrf_app, create_person, token_of):
    client = csrf_app.test_client()
    person = create_person(email="csrf-token@example.test")
    target, _ = token_of(person)
    _, plaintext = token_of(person)
    ok = client.post(f"/api/auth/tokens/{target.id}/revoke", headers=bearer(plaintext), json={})
    assert ok.status_code == 200 and ok.get_json()["revoked_at"]
    made = client.post("/account/tokens", headers=bearer(plaintext), data={"name": "from a script"})
    assert made.status_code == 201
    login(client, "csrf-token@example.test")
    assert client.post("/account/tokens", data={"name": "forged"}).status_code == 400


def test_account_page_creates_shows_once_and_revokes(csrf_app, create_person):
    client = csrf_app.test_client()
    person = create_person(email="owner@example.test")
    db.session.commit()
    login(client, "owner@example.test")
    page = client.get("/account").get_data(as_text=True)
    created = client.post("/account/tokens", data={"name": "laptop", "expires_in_days": "30",
                                                   "csrf_token": csrf_token_of(page)})
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    plaintext = re.search(r'<code id="new-token">(ebid_[^<]+)</code>', created.get_data(as_text=True)).group(1)
    token = db.session.execute(select(ApiToken).where(ApiToken.person_id == person.id)).scalar_one()
    assert token.token_hash == hash_token(plaintext)
    assert abs(token.expires_at - token.created_at - timedelta(days=30)) < timedelta(seconds=5)
    again = client.get("/account").get_data(as_text=True)
    assert plaintext not in again and token.prefix in again  # shown once; the prefix tells it apart
    revoked = client.post(f"/account/tokens/{token.id}/revoke", data={"csrf_token": csrf_token_of(again)})
    assert revoked.status_code == 302
    db.session.refresh(token)
    assert token.state() == "revoked"
    assert client.get("/api/auth/me", headers=bearer(plaintext)).status_code == 401


def test_cannot_revoke_someone_elses_token(client, create_person, token_of):
    theirs, _ = token_of()
    create_person(email="me@example.test")
    db.session.commit()
    login(client, "me@example.test")
    assert client.post(f"/account/tokens/{theirs.id}/revoke").status_code == 404
    me = create_person()
    with pytest.raises(Forbidden):
        revoke_api_token(Actor(person_id=me.id, name=me.name), theirs)


def test_issue_validation(app, create_person):
    person = create_person()
    actor = Actor(person_id=person.id, name=person.name)
    with pytest.raises(ValidationFailed):
        issue_api_token(actor, person, "  ")
    with pytest.raises(ValidationFailed, match="future"):
        issue_api_token(actor, person, "x", expires_at=now() - timedelta(seconds=1))
    with pytest.raises(Forbidden):
        issue_api_token(actor, create_person(), "for someone else")


def test_last_used_is_written_at_most_once_a_minute(app, token_of):
    token, plaintext = token_of()
    first = authenticate_api_token(plaintext).last_used_at
    clock.travel(timedelta(seconds=10))
    assert authenticate_api_token(plaintext).last_used_at == first
    clock.travel(timedelta(minutes=1))
    assert authenticate_api_token(plaintext).last_used_at > first
