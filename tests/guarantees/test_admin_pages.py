"""The issuer administration pages (出函机构管理) as a platform administrator uses them: the list and the
detail page in both languages, who is refused, and every form's success (stored and audited) and its
refusals (shown beside the field, nothing stored, nothing audited)."""

from __future__ import annotations

import html
import io
import re
from decimal import Decimal as D

import pytest
from cryptography.hazmat.primitives import hashes
from sqlalchemy import func, select

from core.audit import AuditEvent
from core.db import db
from core.identity.models import Organisation
from guarantees import issuer_by_code, rate_in_force
from guarantees.models import GuaranteeProduct, Issuer, IssuerCertificate, ProductRate, RatePolicy
from tests.factories import PASSWORD, make_uscc
from tests.guarantees.conftest import IssuerKeys, pem

LIST = "/guarantees/admin/issuers"
NEW = "/guarantees/admin/issuers/new"
CHANGES = AuditEvent.action.like("guarantee.%") | AuditEvent.action.like("organisation%")
CAP_REFUSAL = "The rate 1.2‰ is above the platform's cap of 1‰; set a rate of 1‰ or less."


def login(client, person):
    response = client.post("/login", data={"email": person.email, "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def detail(issuer) -> str:
    return f"/guarantees/admin/issuers/{issuer.id}"


def field_error(page: str, form: str, field: str) -> str:
    """The messages shown beside ``field`` inside ``form`` (not those of the summary above the form)."""
    block = re.search(rf'<form[^>]*data-form="{form}".*?</form>', page, re.S)
    assert block, f"no form {form} on the page"
    html = block.group(0)
    start = html.index(f'data-field="{field}"')
    end = html.find('data-field="', start + 1)
    return " ".join(re.findall(r'<div class="field-error">(.*?)</div>', html[start:end if end > 0 else None]))


def state() -> dict:
    """Everything the administration can change, and the audit head: a refusal must leave all of it."""
    db.session.expire_all()
    count = lambda model: db.session.scalar(select(func.count()).select_from(model))  # noqa: E731
    issuers = [(i.code, i.organisation.name, i.api_base_url, i.message_cert_pem, i.letter_trust_root_pem,
                i.is_admitted) for i in db.session.scalars(select(Issuer).order_by(Issuer.id))]
    products = [(p.code, p.minimum_fee, p.maximum_fee, p.is_active)
                for p in db.session.scalars(select(GuaranteeProduct).order_by(GuaranteeProduct.id))]
    return {"issuers": issuers, "products": products, "organisations": count(Organisation),
            "rates": count(ProductRate), "certificates": count(IssuerCertificate), "policies": count(RatePolicy),
            "audit": db.session.scalar(select(AuditEvent.seq).where(CHANGES).order_by(AuditEvent.seq.desc()).limit(1))}


def actions_after(seq: int | None) -> list[str]:
    """The audited changes since ``seq`` (logins and logouts are audited too, but change nothing here)."""
    return list(db.session.scalars(select(AuditEvent.action).where(AuditEvent.seq > (seq or 0), CHANGES)
                                   .order_by(AuditEvent.seq)))


def fresh_issuer(code: str = "BANK1") -> Issuer:
    """The issuer as the requests left it (they run in their own sessions)."""
    db.session.expire_all()
    return issuer_by_code(code)


@pytest.fixture
def admin(create_person):
    person = create_person(roles=("admin",), name="Platform Admin")
    db.session.commit()
    return person


@pytest.fixture
def bank(make_issuer, policy):
    """BANK1 with its product BANK1-BID at 0.8‰ (minimum 300.00), under a cap of 1‰."""
    issuer, product, keys = make_issuer("BANK1", url="https://bank1.example/api")
    return issuer, product, keys


@pytest.fixture
def as_admin(client, admin):
    return login(client, admin)


def admit_form(**overrides) -> dict:
    keys = IssuerKeys.make("ICBC-QD")
    data = {"name": "ICBC Qingdao", "uscc": make_uscc(7001), "code": "ICBC-QD", "kind": "bank",
            "api_base_url": "https://guarantee.icbc.example/api/", "message_cert_pem": pem(keys.message_cert),
            "letter_trust_root_pem": pem(keys.ca_cert)}
    data.update(overrides)
    return data


# -- the pages ------------------------------------------------------------------------------------

def test_list_shows_issuers_certificates_products_and_the_cap_in_chinese_and_english(client, as_admin, bank):
    issuer, _product, keys = bank
    english = text(client.get(LIST))
    assert 'lang="en"' in english and "Guarantee issuers" in english
    row = re.search(r'<tr data-issuer="BANK1">.*?</tr>', english, re.S).group(0)
    assert "BANK1 Guarantee Co." in row and "https://bank1.example/api" in row and 'data-status="admitted"' in row
    assert "CN=BANK1 messages" in row  # the current certificate's subject
    assert keys.message_cert.fingerprint(hashes.SHA256()).hex()[:16] in row
    assert 'data-product="BANK1-BID" data-rate="0.8"' in row and "0.8‰" in row and "minimum 300.00 CNY" in row
    assert "no maximum" in row
    assert 'data-cap="1"' in english and "cap 1‰, reference rate 1.5‰" in english

    client.environ_base.pop("HTTP_ACCEPT_LANGUAGE")
    chinese = text(client.get(LIST))
    assert 'lang="zh-CN"' in chinese
    assert "出函机构" in chinese and "费率上限" in chinese and "最低 300.00 元" in chinese
    assert "Guarantee issuers" not in chinese and "Rate cap" not in chinese


def test_detail_shows_rate_and_certificate_history_with_who_and_when(client, as_admin, admin, bank):
    issuer, product, _keys = bank
    assert client.post(f"/guarantees/admin/products/{product.id}/rate", data={"rate_permille": "0.6"}).status_code == 302
    page = text(client.get(detail(issuer)))
    rates = re.search(r'<table data-table="rates">.*?</table>', page, re.S).group(0)
    assert re.findall(r'data-rate-version="([^"]+)"', rates) == ["0.6", "0.8"]  # newest first
    assert "Platform Admin" in rates and "the platform (command line or scheduler)" in rates
    assert "in force" in rates
    certificates = re.search(r'<table data-table="certificates">.*?</table>', page, re.S).group(0)
    assert re.findall(r'data-cert-version="(\d+)"', certificates) == ["1"] and "Admission" in certificates

    client.environ_base.pop("HTTP_ACCEPT_LANGUAGE")
    chinese = text(client.get(detail(issuer)))
    assert "保函产品" in chinese and "费率" in chinese and "证书" in chinese
    assert "Certificate history" not in chinese


def test_the_nav_links_the_pages_for_administrators_only(client, admin, bidder):
    link = 'data-nav="guarantee-issuers"'
    assert link not in text(client.get("/tenders"))
    login(client, bidder[1])
    assert link not in text(client.get("/tenders"))
    client.post("/logout")
    login(client, admin)
    assert f'href="{LIST}" {link}' in text(client.get("/tenders"))


def _urls(issuer, product) -> list[tuple[str, str]]:
    return [("get", LIST), ("get", NEW), ("get", detail(issuer)), ("post", NEW), ("post", f"{detail(issuer)}/details"),
            ("post", f"{detail(issuer)}/certificate"), ("post", f"{detail(issuer)}/admission"),
            ("post", f"{detail(issuer)}/products"), ("post", f"/guarantees/admin/products/{product.id}/rate"),
            ("post", f"/guarantees/admin/products/{product.id}/active"), ("post", "/guarantees/admin/policy")]


def test_anonymous_visitors_are_sent_to_the_login_page(client, bank):
    before = state()
    for method, url in _urls(bank[0], bank[1]):
        response = getattr(client, method)(url, data={"rate_permille": "0.5", "admitted": "0", "active": "0"})
        assert response.status_code == 302 and "/login" in response.headers["Location"], url
    assert state() == before


def test_bidders_and_issuer_staff_are_refused(client, bank, bidder, create_person):
    before = state()
    staff = create_person(roles=("issuer",), organisation=bank[0].organisation)
    db.session.commit()
    for person in (bidder[1], staff):
        login(client, person)
        for method, url in _urls(bank[0], bank[1]):
            response = getattr(client, method)(url, data={"rate_permille": "0.5", "admitted": "0", "active": "0"})
            assert response.status_code == 403, url
            assert "Only a platform administrator may manage issuers" in text(response)
        client.post("/logout")
    assert state() == before


def test_a_post_without_the_csrf_token_is_refused(csrf_app, admin, bank):
    client = csrf_app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = str(admin.id)
        session["_fresh"] = True
    before = state()
    url = f"/guarantees/admin/products/{bank[1].id}/rate"
    refused = client.post(url, data={"rate_permille": "0.5"})
    assert refused.status_code == 400 and "reload the page" in text(refused)
    assert state() == before
    token = re.search(r'name="csrf_token" value="([^"]+)"', text(client.get(detail(bank[0])))).group(1)
    assert client.post(url, data={"rate_permille": "0.5", "csrf_token": token}).status_code == 302


# -- admitting an issuer --------------------------------------------------------------------------

def test_admit_an_issuer_with_a_pasted_and_an_uploaded_certificate(client, as_admin, policy):
    before = state()
    form = admit_form()
    root = form.pop("letter_trust_root_pem")
    form["letter_trust_root_pem_file"] = (io.BytesIO(root.encode()), "ca.pem")
    response = client.post(NEW, data=form, content_type="multipart/form-data")
    assert response.status_code == 302
    issuer = fresh_issuer("ICBC-QD")
    assert response.headers["Location"].endswith(detail(issuer))
    assert issuer.name == "ICBC Qingdao" and issuer.organisation.kind.value == "issuer"
    assert issuer.api_base_url == "https://guarantee.icbc.example/api" and issuer.letter_trust_root_pem == root
    assert [v.version for v in issuer.certificates] == [1]
    assert actions_after(before["audit"]) == ["organisation_registered", "guarantee.issuer.admit"]
    page = text(client.get(detail(issuer)))
    assert "Issuer ICBC-QD (ICBC Qingdao) is admitted" in page


@pytest.mark.parametrize(("overrides", "field", "message", "status"), [
    ({"api_base_url": "ftp://guarantee.example"}, "api_base_url", "Enter the issuer's API address", 422),
    ({"message_cert_pem": "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----"},
     "message_cert_pem", "This is not a PEM certificate", 422),
    ({"message_cert_pem": ""}, "message_cert_pem", "Paste the certificate in PEM form or choose its file.", 422),
    ({"code": "BANK1"}, "code", "Choose another code.", 409),
    ({"code": "x"}, "code", "Use 2 to 32 letters, digits", 422),
    ({"uscc": "123"}, "uscc", "", 422),
    ({"name": ""}, "name", "Enter the issuer's registered name", 422),
])
def test_admission_refusals_show_the_error_beside_the_field_and_store_nothing(client, as_admin, bank, overrides,
                                                                              field, message, status):
    before = state()
    response = client.post(NEW, data=admit_form(**overrides))
    page = text(response)
    assert response.status_code == status
    assert 'data-form-error="admit"' in page
    assert field_error(page, "admit", field) and message in field_error(page, "admit", field)
    assert 'value="ICBC Qingdao"' in page or field == "name"  # what was typed is kept
    assert state() == before


def test_admission_refuses_a_letter_trust_root_that_is_no_ca_and_an_uploaded_binary(client, as_admin, bank):
    keys = IssuerKeys.make("ICBC-QD")
    before = state()
    page = text(client.post(NEW, data=admit_form(letter_trust_root_pem=pem(keys.letter_cert))))
    assert "CA=true" in field_error(page, "admit", "letter_trust_root_pem")
    form = admit_form()
    form["message_cert_pem_file"] = (io.BytesIO(b"\x30\x82\x01\xff\x80"), "cert.der")
    page = text(client.post(NEW, data=form, content_type="multipart/form-data"))
    assert "not a PEM text file" in field_error(page, "admit", "message_cert_pem")
    assert state() == before


# -- name, address, certificates, admission --------------------------------------------------------

def test_rename_and_move_the_api_address(client, as_admin, bank):
    issuer = bank[0]
    before = state()
    response = client.post(f"{detail(issuer)}/details", data={"name": "Bank One Guarantees", "reason": "merger renamed it",
                                                              "api_base_url": "https://api.bank1.example/v2"})
    assert response.status_code == 302
    issuer = fresh_issuer()
    assert issuer.name == "Bank One Guarantees" and issuer.api_base_url == "https://api.bank1.example/v2"
    assert [(v.version, v.api_base_url) for v in issuer.certificates][-1] == (2, "https://api.bank1.example/v2")
    assert actions_after(before["audit"]) == ["guarantee.issuer.update", "guarantee.issuer.rename"]


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"name": "BANK1 Guarantee Co.", "api_base_url": "not a url", "reason": "moved servers"}, "api_base_url",
     "Enter the issuer's API address"),
    ({"name": "New name", "api_base_url": "https://bank1.example/api", "reason": "x"}, "reason",
     "Say why the certificate or endpoint changes"),
    ({"name": "BANK1 Guarantee Co.", "api_base_url": "https://bank1.example/api", "reason": "no change at all"},
     "name", "Nothing changes"),
])
def test_detail_refusals_change_nothing(client, as_admin, bank, data, field, message):
    before = state()
    response = client.post(f"{detail(bank[0])}/details", data=data)
    page = text(response)
    assert response.status_code == 422
    assert message in field_error(page, "details", field)
    assert state() == before


def test_rotate_the_certificates(client, as_admin, bank):
    issuer = bank[0]
    new = IssuerKeys.make("BANK1")
    before = state()
    response = client.post(f"{detail(issuer)}/certificate",
                           data={"message_cert_pem_file": (io.BytesIO(pem(new.message_cert).encode()), "msg.pem"),
                                 "letter_trust_root_pem": pem(new.ca_cert), "reason": "annual key rotation"},
                           content_type="multipart/form-data")
    assert response.status_code == 302 and response.headers["Location"].endswith("#certificates")
    issuer = fresh_issuer()
    assert issuer.message_cert_pem == pem(new.message_cert) and issuer.letter_trust_root_pem == pem(new.ca_cert)
    first, second = issuer.certificates
    assert first.valid_until is not None and not first.revoked and second.reason == "annual key rotation"
    assert actions_after(before["audit"]) == ["guarantee.issuer.update"]
    page = text(client.get(detail(issuer)))
    assert "Certificate version 2 of BANK1 is in force from now" in page
    assert re.findall(r'data-cert-version="(\d+)"', page) == ["2", "1"]
    assert "CN=BANK1 messages" in page and second.message_cert_sha256[:16] in page


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"message_cert_pem": "garbage", "reason": "annual key rotation"}, "message_cert_pem",
     "This is not a PEM certificate"),
    ({"reason": "annual key rotation"}, "message_cert_pem", "Nothing changes"),
    ({"letter_trust_root_pem": "LEAF", "reason": "annual key rotation"}, "letter_trust_root_pem", "CA=true"),
    ({"message_cert_pem": "NEW", "reason": ""}, "reason", "Say why"),
])
def test_rotation_refusals_change_nothing(client, as_admin, bank, data, field, message):
    new = IssuerKeys.make("BANK1")
    data = {k: {"NEW": pem(new.message_cert), "LEAF": pem(new.letter_cert)}.get(v, v) for k, v in data.items()}
    before = state()
    response = client.post(f"{detail(bank[0])}/certificate", data=data)
    assert response.status_code == 422
    assert message in field_error(text(response), "certificate", field)
    assert state() == before


def test_suspend_and_admit_again(client, as_admin, bank):
    before = state()
    assert client.post(f"{detail(bank[0])}/admission", data={"admitted": "0", "reason": "licence review"}).status_code == 302
    assert not fresh_issuer().is_admitted
    page = text(client.get(LIST))
    assert 'data-status="suspended"' in page and 'data-not-offered="issuer_not_admitted"' in page
    assert client.post(f"{detail(bank[0])}/admission", data={"admitted": "1"}).status_code == 302
    assert fresh_issuer().is_admitted
    assert actions_after(before["audit"]) == ["guarantee.issuer.admission", "guarantee.issuer.admission"]


# -- products and rates ---------------------------------------------------------------------------

def test_add_a_product(client, as_admin, bank):
    before = state()
    response = client.post(f"{detail(bank[0])}/products", data={
        "code": "PERF", "name": "Performance bond", "rate_permille": "0.95", "minimum_fee": "500.00",
        "maximum_fee": "20000.00", "extra_validity_days": "30", "claim_answer_days": "10"})
    assert response.status_code == 302
    product = db.session.scalar(select(GuaranteeProduct).where(GuaranteeProduct.code == "PERF"))
    assert (product.minimum_fee, product.maximum_fee, product.extra_validity_days, product.claim_answer_days) == \
        (D("500.00"), D("20000.00"), 30, 10)
    assert rate_in_force(product).rate_permille == D("0.95")
    assert actions_after(before["audit"]) == ["guarantee.product.add"]
    assert "Product PERF is added at 0.95‰." in text(client.get(detail(bank[0])))


@pytest.mark.parametrize(("overrides", "field", "message", "status"), [
    ({"rate_permille": "1.2"}, "rate_permille", "At most 1‰.", 422),
    ({"minimum_fee": "-1.00"}, "minimum_fee", "The minimum fee cannot be negative.", 422),
    ({"maximum_fee": "100.00"}, "maximum_fee", "at least the minimum fee", 422),
    ({"code": "BANK1-BID"}, "code", "Choose another code.", 409),
    ({"extra_validity_days": "thirty"}, "extra_validity_days", "Enter a whole number of days.", 422),
    ({"claim_answer_days": "0"}, "claim_answer_days", "Enter 1 to 90 days.", 422),
    ({"rate_permille": "abc"}, "rate_permille", "Enter a number such as 1.25.", 422),
])
def test_product_refusals_change_nothing(client, as_admin, bank, overrides, field, message, status):
    data = {"code": "PERF", "name": "Performance bond", "rate_permille": "0.9", "minimum_fee": "300.00"}
    data.update(overrides)
    before = state()
    response = client.post(f"{detail(bank[0])}/products", data=data)
    page = text(response)
    assert response.status_code == status
    assert message in field_error(page, "product", field)
    if field == "rate_permille" and overrides["rate_permille"] == "1.2":
        assert CAP_REFUSAL in page  # the service's own message, word for word
    assert 'value="Performance bond"' in page
    assert state() == before


def test_change_a_rate_creates_a_version(client, as_admin, bank):
    product = bank[1]
    before = state()
    response = client.post(f"/guarantees/admin/products/{product.id}/rate", data={"rate_permille": "0.7"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"#product-{product.id}")
    db.session.expire_all()
    assert [r.rate_permille for r in db.session.get(GuaranteeProduct, product.id).rates] == [D("0.8"), D("0.7")]
    assert rate_in_force(db.session.get(GuaranteeProduct, product.id)).rate_permille == D("0.7")
    assert actions_after(before["audit"]) == ["guarantee.product.rate"]
    assert "The rate of BANK1 bid guarantee is 0.7‰ from" in text(client.get(detail(bank[0])))


def test_a_scheduled_rate_is_shown_as_scheduled(client, as_admin, bank):
    product = bank[1]
    assert client.post(f"/guarantees/admin/products/{product.id}/rate",
                       data={"rate_permille": "0.5", "effective_from": "2999-01-01T08:00"}).status_code == 302
    rates = re.search(r'<table data-table="rates">.*?</table>', text(client.get(detail(bank[0]))), re.S).group(0)
    assert 'data-rate-version="0.5"' in rates and "scheduled" in rates
    db.session.expire_all()
    assert rate_in_force(db.session.get(GuaranteeProduct, product.id)).rate_permille == D("0.8")


@pytest.mark.parametrize(("data", "message"), [
    ({"rate_permille": "1.2"}, CAP_REFUSAL),
    ({"rate_permille": "0"}, "A premium rate must be greater than 0‰."),
    ({"rate_permille": "0.5", "effective_from": "2001-01-01T08:00"}, "cannot take effect in the past"),
    ({"rate_permille": "0.5", "effective_from": "tomorrow"}, "Enter the date and time as YYYY-MM-DD HH:MM"),
])
def test_rate_refusals_change_nothing(client, as_admin, bank, data, message):
    product = bank[1]
    before = state()
    response = client.post(f"/guarantees/admin/products/{product.id}/rate", data=data)
    page = text(response)
    assert response.status_code == 422 and message in page
    assert f'data-form-error="rate-{product.id}"' in page
    assert state() == before


def test_the_cap_refusal_is_the_services_message_in_chinese(client, as_admin, bank):
    client.environ_base.pop("HTTP_ACCEPT_LANGUAGE")
    response = client.post(f"/guarantees/admin/products/{bank[1].id}/rate", data={"rate_permille": "1.2"})
    assert response.status_code == 422
    assert "费率 1.2‰ 高于平台费率上限 1‰，请设置为 1‰ 或以下。" in text(response)


def test_withdraw_a_product_and_offer_it_again(client, as_admin, bank):
    product = bank[1]
    before = state()
    url = f"/guarantees/admin/products/{product.id}/active"
    assert client.post(url, data={"active": "0"}).status_code == 302
    db.session.expire_all()
    assert not db.session.get(GuaranteeProduct, product.id).is_active
    assert 'data-not-offered="product_inactive"' in text(client.get(LIST))
    assert client.post(url, data={"active": "1"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(GuaranteeProduct, product.id).is_active
    assert actions_after(before["audit"]) == ["guarantee.product.active", "guarantee.product.active"]


# -- the rate cap ---------------------------------------------------------------------------------

def test_lower_the_cap(client, as_admin, bank):
    before = state()
    response = client.post("/guarantees/admin/policy", data={"cap_permille": "0.7", "reference_permille": "1.5"})
    assert response.status_code == 302
    page = text(client.get(LIST))
    assert "The rate cap is 0.7‰ (reference rate 1.5‰)" in page
    assert "No longer offered, rate above the new cap: BANK1/BANK1-BID." in page
    assert 'data-cap="0.7"' in page and 'data-not-offered="rate_above_cap"' in page
    db.session.expire_all()
    assert rate_in_force(db.session.get(GuaranteeProduct, bank[1].id)).rate_permille == D("0.8")  # never rewritten
    assert actions_after(before["audit"]) == ["guarantee.rate_policy.set"]


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"cap_permille": "one", "reference_permille": "1.5"}, "cap_permille", "Enter a number such as 1.25."),
    ({"cap_permille": "-1", "reference_permille": "1.5"}, "cap_permille", "Enter a rate greater than 0, e.g. 1.0."),
    ({"cap_permille": "0.7", "reference_permille": ""}, "reference_permille", "Enter a number such as 1.25."),
])
def test_cap_refusals_change_nothing(client, as_admin, bank, data, field, message):
    before = state()
    response = client.post("/guarantees/admin/policy", data=data)
    page = text(response)
    assert response.status_code == 422 and 'data-form-error="policy"' in page
    assert message in field_error(page, "policy", field)
    assert state() == before
