"""The verbs and read models behind the issuer administration pages: admitting by credit code, renaming,
changing name and address together, reading a certificate, and refusals that name their field."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from cryptography.hazmat.primitives import hashes
from sqlalchemy import func, select

from core.audit import AuditEvent
from core.db import db
from core.errors import Conflict, ValidationFailed
from core.identity.models import Organisation, OrganisationKind
from guarantees import add_product, admit_new_issuer, change_issuer_details, rename_issuer, set_rate_policy
from guarantees.errors import AdminRequired
from guarantees.issuer_admin import issuer_rows, person_names
from guarantees.issuer_certs import describe_certificate
from guarantees.rates import check_rate
from tests.factories import make_uscc
from tests.guarantees.conftest import ADMIN, IssuerKeys, pem


def _admit(**overrides):
    keys = IssuerKeys.make("ICBC-QD")
    values = {"uscc": make_uscc(8001), "name": "ICBC Qingdao", "code": "ICBC-QD", "kind": "bank",
              "api_base_url": "https://icbc.example/api", "message_cert_pem": pem(keys.message_cert),
              "letter_trust_root_pem": pem(keys.ca_cert)}
    values.update(overrides)
    return admit_new_issuer(ADMIN, **values)


def _last_event(action: str) -> AuditEvent:
    return db.session.scalar(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq.desc()))


def test_admit_registers_a_new_organisation_as_an_issuer(app):
    issuer = _admit()
    assert issuer.organisation.kind == OrganisationKind.ISSUER and issuer.name == "ICBC Qingdao"
    assert issuer.organisation.uscc == make_uscc(8001)


def test_admit_uses_an_organisation_already_registered_under_the_name_it_has(app, create_org):
    org = create_org(kind=OrganisationKind.ISSUER, name="Qingdao Guarantee Co.", uscc=make_uscc(8002))
    issuer = _admit(uscc=org.uscc, name="Qingdao Guarantee Co.")
    assert issuer.organisation_id == org.id
    assert db.session.scalar(select(func.count()).select_from(Organisation)) == 1


def test_admit_refuses_another_name_for_a_registered_organisation(app, create_org):
    org = create_org(kind=OrganisationKind.ISSUER, name="Qingdao Guarantee Co.", uscc=make_uscc(8003))
    with pytest.raises(ValidationFailed) as refused:
        _admit(uscc=org.uscc, name="Some other name")
    assert "Qingdao Guarantee Co." in refused.value.to_dict()["fields"]["name"][0]


def test_admit_refuses_a_company_that_is_no_issuer(app, create_org):
    org = create_org(kind=OrganisationKind.COMPANY, name="Builder Ltd", uscc=make_uscc(8004))
    with pytest.raises(ValidationFailed) as refused:
        _admit(uscc=org.uscc, name="Builder Ltd")
    assert "organisation" in refused.value.fields


def test_only_administrators_admit_and_rename(app, make_issuer, bidder):
    issuer, _product, _keys = make_issuer("BANK1")
    with pytest.raises(AdminRequired):
        admit_new_issuer(bidder[2], uscc=make_uscc(8005), name="X", code="X1", kind="bank",
                         api_base_url="https://x.example", message_cert_pem="", letter_trust_root_pem="")
    with pytest.raises(AdminRequired):
        rename_issuer(bidder[2], issuer, "New name", "because it merged")


def test_rename_records_the_old_name_and_the_reason(app, make_issuer):
    issuer, _product, _keys = make_issuer("BANK1")
    rename_issuer(ADMIN, issuer, "  Bank One  ", "renamed after the merger")
    assert issuer.organisation.name == "Bank One"
    event = _last_event("guarantee.issuer.rename")
    assert event.summary == {"code": "BANK1", "organisation_uscc": issuer.organisation.uscc, "name": "Bank One",
                             "previous_name": "BANK1 Guarantee Co.", "reason": "renamed after the merger"}


@pytest.mark.parametrize(("name", "reason", "field"), [
    ("BANK1 Guarantee Co.", "renamed after the merger", "name"),   # the same name
    ("", "renamed after the merger", "name"),
    ("x" * 201, "renamed after the merger", "name"),
    ("Bank One", "", "reason"),
])
def test_rename_refusals(app, make_issuer, name, reason, field):
    issuer, _product, _keys = make_issuer("BANK1")
    with pytest.raises(ValidationFailed) as refused:
        rename_issuer(ADMIN, issuer, name, reason)
    assert field in refused.value.fields


def test_change_details_moves_the_address_as_a_new_version_and_keeps_the_name(app, make_issuer):
    issuer, _product, _keys = make_issuer("BANK1", url="https://bank1.example/api")
    assert change_issuer_details(ADMIN, issuer, name=issuer.name, api_base_url="https://bank1.example/v2/",
                                 reason="moved to a new server") == ["api_base_url"]
    assert [v.api_base_url for v in issuer.certificates] == ["https://bank1.example/api", "https://bank1.example/v2"]
    assert _last_event("guarantee.issuer.rename") is None


def test_change_details_renames_without_a_new_version(app, make_issuer):
    issuer, _product, _keys = make_issuer("BANK1", url="https://bank1.example/api")
    assert change_issuer_details(ADMIN, issuer, name="Bank One", api_base_url="https://bank1.example/api/",
                                 reason="renamed after the merger") == ["name"]
    assert len(issuer.certificates) == 1 and issuer.name == "Bank One"


def test_change_details_refuses_when_nothing_changes(app, make_issuer):
    issuer, _product, _keys = make_issuer("BANK1", url="https://bank1.example/api")
    with pytest.raises(ValidationFailed) as refused:
        change_issuer_details(ADMIN, issuer, name=issuer.name, api_base_url=issuer.api_base_url,
                              reason="nothing really")
    assert "name" in refused.value.fields


def test_describe_certificate():
    keys = IssuerKeys.make("BANK1")
    summary = describe_certificate(pem(keys.message_cert))
    assert summary.subject == "O=BANK1 messages,CN=BANK1 messages" and summary.issuer.endswith("CN=BANK1 Root CA")
    assert summary.sha256 == keys.message_cert.fingerprint(hashes.SHA256()).hex()
    assert summary.not_before == keys.message_cert.not_valid_before_utc
    assert summary.not_after - summary.not_before == timedelta(days=3650)
    assert not summary.expired_at(summary.not_after - timedelta(seconds=1)) and summary.expired_at(summary.not_after)
    assert describe_certificate("not a certificate") is None


@pytest.mark.parametrize(("value", "field"), [(D("0"), "cap_permille"), (D("1000"), "reference_permille"),
                                               (D("0.00001"), "rate_permille")])
def test_check_rate_names_the_field_it_was_given(value, field):
    with pytest.raises(ValidationFailed) as refused:
        check_rate(value, field)
    assert list(refused.value.fields) == [field]


def test_a_cap_refusal_names_the_cap_field(app):
    with pytest.raises(ValidationFailed) as refused:
        set_rate_policy(ADMIN, "-1", "1.5")
    assert list(refused.value.fields) == ["cap_permille"]


def test_a_duplicate_product_code_names_the_code_field(app, make_issuer):
    issuer, product, _keys = make_issuer("BANK1")
    with pytest.raises(Conflict) as refused:
        add_product(ADMIN, issuer, code=product.code, name="Again", minimum_fee="0", rate_permille="0.5")
    assert list(refused.value.fields) == ["code"]


def test_issuer_rows_show_the_rate_in_force_and_why_a_product_is_not_offered(app, make_issuer, policy):
    make_issuer("BANK2", rate="0.9")
    make_issuer("BANK1", rate="0.8")
    set_rate_policy(ADMIN, "0.85", "1.5")
    rows = issuer_rows()
    assert [r.issuer.code for r in rows] == ["BANK1", "BANK2"]
    assert [(p.rate.rate_permille, p.availability.code) for r in rows for p in r.products] == \
        [(D("0.8"), ""), (D("0.9"), "rate_above_cap")]
    assert rows[0].version.version == 1 and rows[0].message_cert.subject.endswith("CN=BANK1 messages")


def test_person_names(app, create_person):
    person = create_person(name="Wang Fang")
    assert person_names([person.id, None]) == {person.id: "Wang Fang"}
    assert person_names([None]) == {}
