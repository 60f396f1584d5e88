"""The sealed-bid pages: the sealing page's set-up, my bids with receipts and checks, the tender's log section.

The sealing itself runs in the browser and is tested in tests/e2e/test_browser_seal.py; here the server side
of the pages: who may open them, what configuration the script gets (and that it carries no secret), the
receipt file ``ebid client verify-receipt`` reads, and that a stored receipt that no longer matches the log
is shown as such.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from pathlib import Path

from sqlalchemy import select, text

from bidding.bid_page_strings import bids_strings, seal_strings
from bidding.sealed_models import Bid
from bidding.translog import final_head
from core.db import db
from core.identity.models import Certificate, Role, RoleGrant
from crypto import merkle
from crypto.receipt import verify_receipt
from crypto.suites import SUITE_P256
from ebid.app_paths import ROOT
from tests.bidding.sealed_support import (  # noqa: F401  (kit_fixture is the kit fixture)
    kit_fixture,
    lot_of,
    past_deadline,
    submit,
    transparency_keys,
)
from tests.factories import PASSWORD

SEAL_JS = ROOT / "ebid" / "static" / "seal"


def login(client, person):
    response = client.post("/login", data={"email": person.email, "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (response.status_code, response.get_data(as_text=True)[:500])
    return response.get_data(as_text=True)


def data_json(page_text: str, element_id: str, attribute: str) -> dict:
    match = re.search(rf'id="{element_id}"[^>]*?{attribute}="([^"]*)"', page_text)
    assert match, f"{element_id} has no {attribute}"
    return json.loads(html.unescape(match.group(1)))


def submitted(kit, tender, bidder, version=1):
    lot = lot_of(tender)
    envelope = kit.seal(tender, lot, bidder, version)
    response = submit(bidder.client, tender, lot, envelope)
    assert response.status_code == 201, response.get_json()
    return envelope, response.get_json()


# --- the sealing page --------------------------------------------------------------------------------

def test_sealing_page_gives_the_script_what_it_needs_and_nothing_secret(kit, app):
    tender = kit.tender(mode="bidder_then_custodians")
    lot, bidder = lot_of(tender), kit.bidder()
    client = login(app.test_client(), bidder.person)

    text = page(client, f"/tenders/{tender.id}/lots/{lot.id}/seal")
    config = data_json(text, "seal-app", "data-config")
    assert (config["tenderCode"], config["lotCode"], config["bidder"], config["bidVersion"]) == \
        (tender.code, lot.code, bidder.org.uscc, 1)
    assert config["openingKey"] == {"keyId": tender.opening_key_id, "pem": tender.opening_public_key_pem}
    assert config["recipients"] == {"tenderKey": True, "bidderKey": True} and config["keyMode"] == "single"
    [cert] = config["certificates"]  # the organisation's certificate made by kit.bidder()
    assert cert["key_id"] == SUITE_P256.key_id(bidder.signing_key.public_key()).hex() and cert["usable"]
    assert config["maxEnvelopeBytes"] > 0 and config["chunkSize"] <= 32 << 20
    strings = data_json(text, "seal-app", "data-strings")
    assert strings == {k: str(v) for k, v in seal_strings().items()}
    # nothing on the page can be form-submitted: the bid's inputs belong to no form and have no names
    app_part = text[text.index('id="seal-app"'):]
    assert "<form" not in app_part
    assert not re.search(r'<input[^>]*id="(bid-|key-)[^"]*"[^>]*\bname=', app_part)
    assert '<script type="module" src="/static/seal/seal-page.js">' in text


def test_sealing_page_for_a_replacement_and_a_double_envelope(kit, app):
    tender = kit.tender(mode="double_envelope")
    bidder = kit.bidder()
    submitted(kit, tender, bidder)
    client = login(app.test_client(), bidder.person)
    text = page(client, f"/tenders/{tender.id}/lots/{lot_of(tender).id}/seal?lang=en")
    config = data_json(text, "seal-app", "data-config")
    assert config["bidVersion"] == 2 and config["keyMode"] == "split"
    assert "replaces your current version 1" in text and "double envelope" in text


def test_sealing_page_without_a_certificate_explains_how_to_get_one(kit, app, create_person):
    tender = kit.tender(mode="bidder", custodians=0)
    bidder = kit.bidder()
    uncertified = create_person(roles=("bidder",), organisation=kit.create_org())
    db.session.commit()
    client = login(app.test_client(), uncertified)
    text = page(client, f"/tenders/{tender.id}/lots/{lot_of(tender).id}/seal?lang=en")
    assert "no certificate to sign bids with" in text and "ebid client keygen" in text
    assert "seal-page.js" not in text and 'id="seal-app"' not in text
    assert bidder  # another bidder's certificate does not count for this organisation


def test_sealing_page_after_the_deadline_seals_nothing(kit, app, frozen):
    tender = kit.tender()
    bidder = kit.bidder()
    past_deadline(tender, frozen)
    client = login(app.test_client(), bidder.person)
    text = page(client, f"/tenders/{tender.id}/lots/{lot_of(tender).id}/seal?lang=en")
    assert "does not accept bids now" in text and "seal-page.js" not in text


def test_sealing_page_refuses_non_bidders_and_unknown_lots(kit, app, client):
    tender = kit.tender()
    other = kit.tender()
    lot = lot_of(tender)
    assert client.get(f"/tenders/{tender.id}/lots/{lot.id}/seal").status_code == 302  # log in first
    staff = login(app.test_client(), tender.created_by)
    assert staff.get(f"/tenders/{tender.id}/lots/{lot.id}/seal").status_code == 403
    bidder = login(app.test_client(), kit.bidder().person)
    assert bidder.get(f"/tenders/{tender.id}/lots/{lot_of(other).id}/seal").status_code == 404


# --- my bids -------------------------------------------------------------------------------------------

def test_my_bids_lists_versions_with_checked_receipts(kit, app):
    tender = kit.tender()
    bidder = kit.bidder()
    first, _ = submitted(kit, tender, bidder, 1)
    second, _ = submitted(kit, tender, bidder, 2)
    client = login(app.test_client(), bidder.person)

    text = page(client, "/my/bids?lang=en")
    assert hashlib.sha256(first).hexdigest() in text and hashlib.sha256(second).hexdigest() in text
    assert text.count('data-server-check="ok"') == 2 and 'data-server-check="failed"' not in text
    assert "Current: version 2" in text and ">replaced<" in text
    assert f'href="/tenders/{tender.id}/lots/{lot_of(tender).id}/seal' in text  # replace
    assert 'data-withdraw="/api/tenders/' in text
    assert data_json(text, "bids-app", "data-strings") == {k: str(v) for k, v in bids_strings().items()}


def test_receipt_file_is_what_verify_receipt_reads(kit, app):
    tender = kit.tender()
    bidder = kit.bidder()
    envelope, answer = submitted(kit, tender, bidder)
    bid = db.session.scalar(select(Bid).where(Bid.organisation_id == bidder.org.id))
    client = login(app.test_client(), bidder.person)

    response = client.get(f"/my/bids/{bid.public_id}/receipt.json")
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    bundle = response.get_json()
    assert bundle["type"] == "ebid/client-receipt/v1"
    assert (bundle["tender_id"], bundle["lot_id"], bundle["tender_code"], bundle["lot_code"], bundle["bidder_uscc"],
            bundle["bid_version"]) == (tender.id, lot_of(tender).id, tender.code, lot_of(tender).code,
                                       bidder.org.uscc, 1)
    assert bundle["receipt"] == answer["receipt"] and bundle["log_entry"] == answer["log_entry"]
    assert bundle["envelope"]["sha256"] == hashlib.sha256(envelope).hexdigest()
    keys = transparency_keys(client)
    receipt = verify_receipt(bundle["receipt"], receipt_key=keys["receipt"], log_key=keys["log"],
                             envelope_sha256=hashlib.sha256(envelope).digest(), envelope_size=len(envelope),
                             log_entry_bytes=base64.b64decode(bundle["log_entry"]),
                             inclusion_proof=[bytes.fromhex(h) for h in bundle["inclusion_proof"]])
    salt, uscc = bundle["bidder_commitment"]["salt"], bundle["bidder_commitment"]["uscc"]
    assert hashlib.sha256(b"ebid/bidder-commitment/v1\n" + bytes.fromhex(salt) + uscc.encode()).hexdigest() \
        == receipt.bidder

    stranger = login(app.test_client(), kit.bidder().person)
    assert stranger.get(f"/my/bids/{bid.public_id}/receipt.json").status_code == 404


def test_a_receipt_edited_in_the_database_is_shown_as_failing(kit, app):
    tender = kit.tender()
    bidder = kit.bidder()
    submitted(kit, tender, bidder)
    bid = db.session.scalar(select(Bid).where(Bid.organisation_id == bidder.org.id))
    # a database administrator "corrects" the stored hash of the bid
    db.session.execute(text("UPDATE bids SET envelope_sha256 = :h WHERE id = :id"),
                       {"h": "0" * 64, "id": bid.id})
    db.session.commit()
    text_ = page(login(app.test_client(), bidder.person), "/my/bids?lang=en")
    assert 'data-server-check="failed"' in text_ and "Report this to the supervisor" in text_


def test_my_bids_shows_a_withdrawn_bid_and_no_actions_after_the_deadline(kit, app, frozen):
    tender = kit.tender()
    bidder = kit.bidder()
    submitted(kit, tender, bidder)
    response = bidder.client.post(f"/api/tenders/{tender.id}/lots/{lot_of(tender).id}/withdraw")
    assert response.status_code == 200, response.get_json()
    past_deadline(tender, frozen)
    text_ = page(login(app.test_client(), bidder.person), "/my/bids?lang=en")
    assert ">withdrawn<" in text_ and "No current bid" in text_
    assert 'data-withdraw="' not in text_ and f"/lots/{lot_of(tender).id}/seal" not in text_


def test_my_bids_needs_a_bidder(kit, app):
    tender = kit.tender()
    staff = login(app.test_client(), tender.created_by)
    assert staff.get("/my/bids").status_code == 403


# --- the tender page's transparency section ------------------------------------------------------------

def test_tender_page_keeps_the_log_private_before_the_deadline_and_shows_the_final_head_after(kit, app, client,
                                                                                                frozen):
    tender = kit.tender()
    bidders = [kit.bidder() for _ in range(3)]
    for bidder in bidders:
        submitted(kit, tender, bidder)
    before = page(client, f"/tenders/{tender.id}?lang=en")
    section = before[before.index('data-section="transparency"'):]
    assert tender.opening_key_id in section and "data-log-not-public" in section
    assert "data-final-head" not in section and "ebid client verify-receipt" in section

    bidder_view = page(login(app.test_client(), bidders[0].person), f"/tenders/{tender.id}?lang=en")
    assert f'href="/tenders/{tender.id}/lots/{lot_of(tender).id}/seal' in bidder_view

    past_deadline(tender, frozen)
    after = page(client, f"/tenders/{tender.id}?lang=en")  # the request closes the tender first
    head = final_head(tender.id)
    assert head is not None
    section = after[after.index('data-section="transparency"'):]
    assert f"<dd data-tree-size>{head.tree_size}</dd>" in section and head.root_hash in section
    assert f"lot {lot_of(tender).code}: 3" in section
    leaves = [bytes.fromhex(e["leaf_hash"]) for e in client.get(f"/api/tenders/{tender.id}/log/entries").get_json()]
    assert merkle.root_hash(leaves[:head.tree_size]).hex() == head.root_hash
    assert "data-seal-lot" not in page(login(app.test_client(), bidders[0].person), f"/tenders/{tender.id}")


def test_navigation_links_a_bidder_to_my_bids(kit, app):
    bidder = kit.bidder()
    assert 'href="/my/bids"' in page(login(app.test_client(), bidder.person), "/tenders")


# --- the scripts' sentences ----------------------------------------------------------------------------

def _keys_used(source: str, *patterns: str) -> set[str]:
    return {m for p in patterns for m in re.findall(p, source)}


def test_every_sentence_the_scripts_use_is_rendered_by_the_templates():
    seal_js = (SEAL_JS / "seal-page.js").read_text()
    used = _keys_used(seal_js, r'\bt\("([a-z_]+)"', r'PageError\("([a-z_]+)"')
    used |= {f"key_{c}" for c in _keys_used((SEAL_JS / "keyfile.js").read_text(), r'KeyFileError\("([a-z_]+)"')}
    used |= {f"field_{c}" for c in _keys_used((SEAL_JS / "bid.js").read_text(), r'errors?(?:\[field\]|\.\w+|: )\s*=?\s*"([a-z_]+)"',
                                                     r'error: "([a-z_]+)"')}
    verify = {f"verify_{c}" for c in _keys_used((SEAL_JS / "receipt.js").read_text(), r'VerifyError\("([a-z_]+)"')}
    assert {"key_wrong_passphrase", "field_price_format", "field_document_name", "verify_inclusion"} <= used | verify
    assert used | verify <= set(seal_strings())
    bids_js = (SEAL_JS / "my-bids.js").read_text()
    assert _keys_used(bids_js, r'\bt\("([a-z_]+)"') | {"verified_this", "verified_other", "verified_none"} | verify \
        <= set(bids_strings())


def test_the_sealing_modules_load_nothing_from_elsewhere():
    for path in Path(SEAL_JS).glob("*.js"):
        source = path.read_text()
        for target in re.findall(r'from\s+"([^"]+)"', source):
            assert target.startswith("./") and (SEAL_JS / target[2:]).exists(), (path.name, target)
        assert "http://" not in source and "https://" not in source, path.name


def test_a_person_bidding_for_two_organisations_switches_between_them(kit, app, create_org):
    tender = kit.tender()
    first = kit.bidder()
    envelope, _ = submitted(kit, tender, first)
    second_org = create_org()
    kit.certify(organisation=second_org)
    first.person.grants.append(RoleGrant(role=Role.BIDDER, organisation=second_org))
    db.session.commit()
    client = login(app.test_client(), first.person)

    default = page(client, "/my/bids?lang=en")
    assert hashlib.sha256(envelope).hexdigest() in default and 'id="org"' in default
    other = page(client, f"/my/bids?org={second_org.id}&lang=en")
    assert hashlib.sha256(envelope).hexdigest() not in other and "No bids yet" in other
    sealing = page(client, f"/tenders/{tender.id}/lots/{lot_of(tender).id}/seal?org={second_org.id}")
    assert data_json(sealing, "seal-app", "data-config")["bidder"] == second_org.uscc
    stranger = create_org()
    db.session.commit()
    assert client.get(f"/my/bids?org={stranger.id}").status_code == 403


def test_sealing_page_marks_a_revoked_certificate_as_unusable(kit, app):
    tender = kit.tender()
    bidder = kit.bidder()
    cert = db.session.scalar(select(Certificate).where(Certificate.organisation_id == bidder.org.id))
    cert.revoked_at, cert.revocation_reason = cert.not_before, "keyCompromise"
    db.session.commit()
    text_ = page(login(app.test_client(), bidder.person), f"/tenders/{tender.id}/lots/{lot_of(tender).id}/seal?lang=en")
    [listed] = data_json(text_, "seal-app", "data-config")["certificates"]
    assert not listed["usable"] and listed["reason"].startswith("revoked on")
