"""Factories as fixtures: each returns a function that builds a valid object with overrides."""

from __future__ import annotations

import itertools

import pytest

from core.db import db
from core.identity import uscc as uscc_mod
from core.identity.models import Organisation, OrganisationKind, Person, Role, RoleGrant
from core.identity.passwords import hash_password, use_fast_hashing_for_tests

use_fast_hashing_for_tests()

_seq = itertools.count(1)
PASSWORD = "correct horse battery staple"


def make_uscc(n: int) -> str:
    """A valid USCC unique for ``n``."""
    return uscc_mod.make(f"91370200MA{n:07d}".replace("I", "1")[:17])


@pytest.fixture
def create_org(app):
    def create(**overrides) -> Organisation:
        n = next(_seq)
        values = {"uscc": make_uscc(n), "name": f"Organisation {n}", "kind": OrganisationKind.COMPANY,
                  "region": "370200"}
        values.update(overrides)
        org = Organisation(**values)
        db.session.add(org)
        db.session.flush()
        return org
    return create


@pytest.fixture
def create_person(app):
    def create(*, roles: tuple = (), organisation: Organisation | None = None, password: str = PASSWORD,
               **overrides) -> Person:
        n = next(_seq)
        values = {"email": f"person{n}@example.test", "name": f"Person {n}"}
        values.update(overrides)
        person = Person(password_hash=hash_password(password), **values)
        for role in roles:
            person.grants.append(RoleGrant(role=Role(role),
                                           organisation=organisation if Role(role) in
                                           {Role.BIDDER, Role.TENDERER, Role.AGENCY, Role.ISSUER} else None))
        db.session.add(person)
        db.session.flush()
        return person
    return create
