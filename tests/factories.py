"""Factories as fixtures: each returns a function that builds a valid object with overrides."""

from __future__ import annotations

import io
import itertools
from datetime import timedelta
from decimal import Decimal

import pytest

import bidding
from core.actor import Actor
from core.clock import now
from core.db import db
from core.identity import uscc as uscc_mod
from core.identity.access import actor_for
from core.identity.ca import init_ca, issue_certificate
from core.identity.models import Organisation, OrganisationKind, Person, Role, RoleGrant
from core.identity.passwords import hash_password, use_fast_hashing_for_tests
from crypto import keys

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


@pytest.fixture
def create_tender(app, create_org, create_person):
    """Build a valid draft tender (one lot, one document, periods that satisfy the rules from now on).

    ``publish=True`` publishes it through the service. Overrides: any tender field, ``lots`` (list of
    dicts), ``tenderer`` (Organisation), ``created_by`` (Person, a tenderer member of ``tenderer``).
    The staff member is ``tender.created_by``; act for it with
    ``actor_for(tender.created_by, "tenderer", tender.tenderer_id)``.
    """
    def create(*, publish: bool = False, documents: int = 1, **overrides):
        tenderer = overrides.pop("tenderer", None) or create_org(kind=OrganisationKind.TENDERER)
        person = overrides.pop("created_by", None) or create_person(roles=("tenderer",), organisation=tenderer)
        start = now()
        data = {"title": "Road reconstruction works", "description": "Roads, drainage and lighting.",
                "regime": "works", "category": "works", "is_mandatory": True, "region": "370200",
                "estimated_price": Decimal("1000000.00"), "ceiling_price": Decimal("980000.00"),
                "documents_from_at": start, "documents_until_at": start + timedelta(days=10),
                "question_deadline_at": start + timedelta(days=15), "bid_deadline_at": start + timedelta(days=25),
                "bid_validity_days": 90,
                "lots": [{"title": "Lot 1", "estimated_price": Decimal("1000000.00"),
                          "bond_amount": Decimal("20000.00")}]}
        data.update(overrides)
        actor = actor_for(person, "tenderer", tenderer.id)
        tender = bidding.create_tender(actor, data)
        for i in range(documents):
            bidding.add_document(actor, tender, stream=io.BytesIO(f"tender documents {i}".encode()),
                                 filename=f"documents-{i}.pdf", content_type="application/pdf",
                                 kind="biddingDocuments")
        if publish:
            bidding.publish_tender(actor, tender, expected_version=tender.version)
        db.session.flush()
        return tender
    return create


TEST_CA_PASSPHRASE = "ca passphrase for the tests"


@pytest.fixture
def platform_ca(app, settings):
    """The platform CA in the test's key folder (cheap key encryption, to keep the suite fast)."""
    return init_ca(Actor.system(source="test"), settings.keys_dir, TEST_CA_PASSPHRASE,
                   kdf_log2_n=keys.MIN_SCRYPT_LOG2_N)


@pytest.fixture
def certify(platform_ca):
    """Certify a fresh P-256 key: ``certify(person=p)`` or ``certify(organisation=o)``; returns (key, Certificate).

    The key stays with the test, as it stays with the holder in production.
    """
    def issue(*, person: Person | None = None, organisation: Organisation | None = None, key=None,
              validity_days: int | None = None):
        key = key or keys.generate_private_key()
        if organisation is not None:
            csr = keys.make_csr(key, organisation.name, uscc=organisation.uscc, organisation_name=organisation.name)
        else:
            csr = keys.make_csr(key, person.name, email=person.email)
        cert = issue_certificate(Actor.system(source="test"), csr, person=person, organisation=organisation,
                                 ca=platform_ca, validity_days=validity_days)
        return key, cert
    return issue


@pytest.fixture
def create_custodian(create_person, certify):
    """A key custodian (密钥保管人) holding a personal certificate; returns (person, private key)."""
    def create(**overrides):
        person = create_person(roles=("custodian",), **overrides)
        key, _cert = certify(person=person)
        return person, key
    return create
