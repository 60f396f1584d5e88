"""The main navigation shows the guarantee pages by role: figures to everyone, "My guarantees" to bidders."""

from __future__ import annotations

import pytest

from core.db import db
from core.identity.models import OrganisationKind
from tests.factories import PASSWORD

FIGURES = 'href="/guarantees/figures" data-nav="guarantee-figures"'
MINE = 'href="/my/guarantees" data-nav="my-guarantees"'


def nav(client) -> str:
    return client.get("/tenders").get_data(as_text=True)


def login(client, person):
    assert client.post("/login", data={"email": person.email, "password": PASSWORD}).status_code == 302


def test_visitor_sees_the_figures_only(client):
    html = nav(client)
    assert FIGURES in html and ">Guarantee figures<" in html
    assert MINE not in html


def test_bidder_sees_both(client, create_bidder):
    _, person, _ = create_bidder()
    login(client, person)
    html = nav(client)
    assert FIGURES in html and MINE in html and ">My guarantees<" in html
    assert client.get("/my/guarantees").status_code == 200


@pytest.mark.parametrize("role", ["tenderer", "supervisor"])
def test_other_roles_see_no_my_guarantees(client, create_org, create_person, role):
    org = create_org(kind=OrganisationKind.TENDERER) if role == "tenderer" else None
    person = create_person(roles=(role,), organisation=org)
    db.session.commit()
    login(client, person)
    html = nav(client)
    assert FIGURES in html and MINE not in html


def test_chinese_labels(client, create_bidder):
    client.environ_base.pop("HTTP_ACCEPT_LANGUAGE", None)
    _, person, _ = create_bidder()
    login(client, person)
    html = nav(client)
    assert ">我的保函<" in html
