"""Logging in and out through the pages: argon2id, CSRF, rate limit, safe redirects, audit."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from core.audit import AuditEvent
from core.db import db
from core.identity.passwords import verify_password
from tests.core.identity.conftest import audit_actions, audit_dump, csrf_token_of, login
from tests.factories import PASSWORD

WRONG = "wrong e-mail or password".lower()


def test_login_page_renders_with_the_base_layout(client):
    page = client.get("/login")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="password"' in html and "site-header" in html


def test_login_ok_then_account(client, create_person):
    person = create_person(email="li.na@example.test", name="李娜")
    db.session.commit()
    response = login(client, "Li.Na@example.test")
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    account = client.get("/account")
    assert account.status_code == 200 and "李娜" in account.get_data(as_text=True)
    event = db.session.execute(select(AuditEvent).where(AuditEvent.action == "login")).scalar_one()
    assert (event.actor_person_id, event.source) == (person.id, "127.0.0.1")


def test_wrong_password_and_unknown_email_get_the_same_message(client, create_person):
    create_person(email="known@example.test")
    db.session.commit()
    wrong = login(client, "known@example.test", "not the password")
    unknown = login(client, "nobody@example.test", "not the password")
    for response in (wrong, unknown):
        assert response.status_code == 200
        assert WRONG in response.get_data(as_text=True).lower()
    assert client.get("/account").status_code == 302  # still not logged in
    assert audit_actions() == ["login_failed", "login_failed"]
    assert "not the password" not in audit_dump()


def test_disabled_account_is_refused(client, create_person):
    create_person(email="gone@example.test", is_enabled=False)
    db.session.commit()
    response = login(client, "gone@example.test")
    assert "disabled" in response.get_data(as_text=True)
    assert client.get("/account").status_code == 302
    assert '"reason": "disabled"' in audit_dump()


def test_disabled_account_with_wrong_password_learns_nothing(client, create_person):
    create_person(email="gone@example.test", is_enabled=False)
    db.session.commit()
    html = login(client, "gone@example.test", "wrong guess").get_data(as_text=True)
    assert WRONG in html.lower() and "disabled" not in html


def test_rate_limit_answers_429_with_a_clear_message(client, create_person, rate_limited):
    create_person(email="target@example.test")
    db.session.commit()
    for _ in range(5):
        assert login(client, "target@example.test", "guess").status_code == 200
    blocked = login(client, "target@example.test")  # even the right password waits
    assert blocked.status_code == 429
    assert "Too many attempts" in blocked.get_data(as_text=True)
    assert client.get("/login").status_code == 200  # showing the form does not count


def test_csrf_missing_token_is_400(csrf_app, create_person):
    client = csrf_app.test_client()
    create_person(email="csrf@example.test")
    db.session.commit()
    response = client.post("/login", data={"email": "csrf@example.test", "password": PASSWORD})
    assert response.status_code == 400
    assert "reload the page" in response.get_data(as_text=True)
    assert login(client, "csrf@example.test").status_code == 302  # with the page's token it works


def test_csrf_protects_json_posts_of_a_cookie_session(csrf_app, create_person):
    client = csrf_app.test_client()
    create_person(email="json@example.test")
    db.session.commit()
    assert login(client, "json@example.test").status_code == 302
    response = client.post("/api/auth/tokens/1/revoke", json={})
    assert response.status_code == 400 and response.get_json()["code"] == "csrf_failed"


def test_logout(csrf_app, create_person):
    client = csrf_app.test_client()
    create_person(email="out@example.test")
    db.session.commit()
    login(client, "out@example.test")
    page = client.get("/logout")
    assert client.post("/logout").status_code == 400  # a forged logout has no token
    response = client.post("/logout", data={"csrf_token": csrf_token_of(page.get_data(as_text=True))})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/account").status_code == 302
    assert audit_actions()[-1] == "logout"


@pytest.mark.parametrize(("target", "expected"), [
    ("/tenders?page=2", "/tenders?page=2"),
    ("https://evil.example/", "/account"),
    ("//evil.example/path", "/account"),
    ("/\\evil.example", "/account"),
    ("javascript:alert(1)", "/account"),
    ("", "/account"),
])
def test_next_redirect_stays_on_this_site(client, create_person, target, expected):
    create_person(email="next@example.test")
    db.session.commit()
    response = login(client, "next@example.test", next=target)
    assert response.headers["Location"] == expected


def test_protected_page_sends_people_to_login_with_next(client):
    response = client.get("/account?tab=tokens")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    assert client.get("/api/auth/me").status_code == 401  # the API answers instead of redirecting


def test_login_rehashes_when_parameters_changed(client, create_person):
    old = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1).hash(PASSWORD)
    person = create_person(email="old@example.test")
    person.password_hash = old
    db.session.commit()
    assert login(client, "old@example.test").status_code == 302
    db.session.refresh(person)
    assert person.password_hash != old
    assert verify_password(person.password_hash, PASSWORD)
    assert "$m=1024,t=1,p=1$" in person.password_hash  # the current (test) parameters


def test_passwords_never_reach_the_audit_trail(client, create_person):
    create_person(email="secret@example.test")
    db.session.commit()
    login(client, "secret@example.test", "my-wrong-secret-guess")
    login(client, "secret@example.test")
    dump = audit_dump()
    assert "my-wrong-secret-guess" not in dump and PASSWORD not in dump
    assert audit_actions() == ["login_failed", "login"]
