"""Organisations, persons and roles: validated, audited, refused with a reason."""

from __future__ import annotations

import pytest

from core.actor import Actor
from core.db import db
from core.errors import Forbidden, NotFound, ValidationFailed
from core.identity import (
    Role,
    actor_for,
    create_person,
    grant_role,
    register_organisation,
    revoke_role,
    set_enabled,
)
from core.identity.passwords import verify_password
from tests.core.identity.conftest import SYSTEM, audit_actions, audit_dump

USCC = "91350100M000100Y43"


def test_register_organisation_is_audited(app):
    org = register_organisation(SYSTEM, USCC, "福州示例有限公司", "company", region="350100", is_sme=True)
    db.session.commit()
    assert (org.uscc, org.kind.value, org.region, org.is_sme) == (USCC, "company", "350100", True)
    assert audit_actions() == ["organisation_registered"]


def test_duplicate_uscc_is_refused(app):
    register_organisation(SYSTEM, USCC, "First", "company")
    with pytest.raises(ValidationFailed) as err:
        register_organisation(SYSTEM, USCC.lower(), "Second", "company")
    assert err.value.code == "duplicate_uscc"
    assert USCC in err.value.to_dict()["message"]


def test_unknown_kind_lists_the_kinds(app):
    with pytest.raises(ValidationFailed) as err:
        register_organisation(SYSTEM, USCC, "X", "bank")
    assert "company" in err.value.to_dict()["fields"]["kind"][0]


def test_only_an_administrator_registers(app, create_person):
    clerk = create_person(roles=("expert",))
    with pytest.raises(Forbidden):
        register_organisation(actor_for(clerk, "expert"), USCC, "X", "company")
    admin = create_person(roles=("admin",))
    assert register_organisation(actor_for(admin, "admin"), USCC, "X", "company").id


def test_create_person_hashes_the_password_and_audits_without_it(app):
    person = create_person(SYSTEM, " Alice@Example.TEST ", "Alice", password="a long enough secret")
    db.session.commit()
    assert person.email == "alice@example.test"
    assert person.password_hash != "a long enough secret"
    assert verify_password(person.password_hash, "a long enough secret")
    assert "a long enough secret" not in audit_dump()
    assert person.password_hash not in audit_dump()


def test_create_person_refusals(app):
    create_person(SYSTEM, "bob@example.test", "Bob")
    with pytest.raises(ValidationFailed, match="already exists"):
        create_person(SYSTEM, "BOB@example.test", "Bob again")
    with pytest.raises(ValidationFailed, match="not an e-mail"):
        create_person(SYSTEM, "bob.example.test", "Bob")
    with pytest.raises(ValidationFailed, match="at least 10"):
        create_person(SYSTEM, "carol@example.test", "Carol", password="short")


def test_person_without_password_exists_for_certificate_login(app):
    person = create_person(SYSTEM, "dave@example.test", "Dave")
    assert person.password_hash is None


@pytest.mark.parametrize("role", ["bidder", "tenderer", "agency", "issuer"])
def test_organisation_roles_need_an_organisation(app, create_person, role):
    person = create_person()
    with pytest.raises(ValidationFailed) as err:
        grant_role(SYSTEM, person, role)
    assert err.value.code == "organisation_required"


@pytest.mark.parametrize("role", ["expert", "supervisor", "custodian", "admin"])
def test_other_roles_must_not_name_an_organisation(app, create_person, create_org, role):
    person = create_person()
    with pytest.raises(ValidationFailed) as err:
        grant_role(SYSTEM, person, role, create_org())
    assert err.value.code == "organisation_not_allowed"


def test_grant_and_revoke_role(app, create_person, create_org):
    person, org = create_person(), create_org()
    grant = grant_role(SYSTEM, person, "bidder", org)
    assert grant_role(SYSTEM, person, Role.BIDDER, org) is grant  # granting twice changes nothing
    assert person.has_role(Role.BIDDER, org.id)
    revoke_role(SYSTEM, person, "bidder", org)
    assert not person.has_role(Role.BIDDER)
    with pytest.raises(NotFound):
        revoke_role(SYSTEM, person, "bidder", org)
    assert audit_actions() == ["role_granted", "role_revoked"]


def test_unknown_role_is_named(app, create_person):
    with pytest.raises(ValidationFailed, match="Unknown role 'owner'"):
        grant_role(SYSTEM, create_person(), "owner")


def test_non_member_acting_for_an_organisation_is_refused_by_name(app, create_person, create_org):
    mine, theirs = create_org(name="我的公司"), create_org(name="Someone Else Ltd")
    person = create_person(roles=("bidder",), organisation=mine)
    assert actor_for(person, "bidder", mine.id).organisation_uscc == mine.uscc
    with pytest.raises(Forbidden) as err:
        actor_for(person, "bidder", theirs.id)
    assert err.value.code == "not_a_member"
    assert "Someone Else Ltd" in err.value.to_dict()["message"]


def test_missing_role_is_refused(app, create_person):
    with pytest.raises(Forbidden) as err:
        actor_for(create_person(roles=("expert",)), "supervisor")
    assert "supervisor" in err.value.to_dict()["message"]


def test_disable_person(app, create_person):
    person = create_person()
    set_enabled(SYSTEM, person, False)
    assert not person.is_active
    set_enabled(SYSTEM, person, False)  # no second event
    assert audit_actions() == ["person_disabled"]


def test_system_actor_is_admin_but_a_person_without_role_is_not(app, create_person):
    person = create_person()
    with pytest.raises(Forbidden):
        set_enabled(Actor(person_id=person.id, name=person.name), person, False)
