"""The opening key ceremony at publication: who gets a key, shares for custodians, refusals, the log entry."""

from __future__ import annotations

import base64
import itertools
from datetime import timedelta

import pytest
from sqlalchemy import func, select

import bidding
from bidding import opening_key
from bidding.errors import RulesViolated
from bidding.models import TenderStatus
from bidding.sealed_models import LogEntry, OpeningKeyShare
from core.actor import Actor
from core.clock import clock
from core.db import db
from core.identity.ca import revoke_certificate
from core.identity.models import Certificate
from core.notifications import Notification
from crypto import keys, shamir
from crypto.errors import ShareError, SharesInsufficient
from crypto.receipt import parse_log_entry
from crypto.suites import SUITE_P256
from tests.bidding.conftest import actions, refused, staff
from tests.bidding.sealed_support import keys_load, kit_fixture  # noqa: F401  (kit_fixture is the kit fixture)


def test_publication_makes_a_key_only_the_custodians_can_rebuild(kit):
    tender = kit.tender(custodians=3, threshold=2)
    public = keys_load(tender.opening_public_key_pem)
    assert tender.opening_key_id == SUITE_P256.key_id(public).hex()
    rows = opening_key.shares_of(tender)
    assert [(r.share_index, r.threshold, r.count) for r in rows] == [(1, 2, 3), (2, 2, 3), (3, 2, 3)]
    holders = kit.custodians[tender.id]
    shares = {}
    for person, key in holders:
        data = kit.api_as(person).get(f"/api/tenders/{tender.id}/opening-key/share").get_json()
        shares[person.id] = shamir.decrypt_share(base64.b64decode(data["encrypted_share"]), key,
                                                 context=data["context"].encode())
    for pair in itertools.combinations(shares.values(), 2):
        rebuilt = shamir.combine(pair, public)
        assert rebuilt.public_key().public_numbers() == public.public_numbers()
    with pytest.raises(SharesInsufficient):
        shamir.combine([next(iter(shares.values()))], public)
    # a share opened with another custodian's key, or for another tender, is refused
    (first, first_key), (_, second_key) = holders[0], holders[1]
    row = opening_key.share_for(tender, first.id)
    with pytest.raises(ShareError):
        shamir.decrypt_share(row.encrypted_share, second_key,
                             context=opening_key.share_context(tender.code, first.id, row.share_index))
    with pytest.raises(ShareError):
        shamir.decrypt_share(row.encrypted_share, first_key,
                             context=opening_key.share_context("OTHER-1", first.id, row.share_index))


def test_the_ceremony_is_logged_audited_and_announced(kit):
    tender = kit.tender(custodians=3, threshold=2)
    entries = [parse_log_entry(e) for e in db.session.scalars(
        select(LogEntry.entry).where(LogEntry.tender_id == tender.id).order_by(LogEntry.index))]
    ceremony = [e for e in entries if e.get("event") == "key-ceremony"]
    assert len(ceremony) == 1 and ceremony[0]["key_id"] == tender.opening_key_id and ceremony[0]["detail"] == "k=2 n=3"
    issued = [e for e in entries if e.get("event") == "share-issued"]
    assert [e["custodian"] for e in issued] == [f"person:{p.id}" for p, _ in kit.custodians[tender.id]]
    assert all(e.get("event") in ("padding", "key-ceremony", "share-issued") for e in entries)
    trail = actions(tender.id)
    assert trail[-2:] == ["tender.opening_key", "tender.publish"]
    notified = db.session.scalar(select(func.count()).select_from(Notification)
                                 .where(Notification.kind == "opening_key_share"))
    assert notified == 3
    public = kit.api_as(kit.create_person()).get(f"/api/tenders/{tender.id}/opening-key").get_json()
    assert public["key_id"] == tender.opening_key_id and public["threshold"] == 2 and len(public["custodians"]) == 3
    outsider = kit.api_as(kit.create_person(roles=("custodian",))).get(f"/api/tenders/{tender.id}/opening-key/share")
    assert outsider.status_code == 403 and outsider.get_json()["code"] == "not_a_custodian"


@pytest.mark.parametrize(("mode", "custodians", "has_key"), [
    ("bidder", 0, False),
    ("bidder", 3, True),  # custodians named: a fallback key, and every bid must be wrapped for it
    ("custodians", 3, True),
    ("bidder_then_custodians", 3, True),
    ("double_envelope", 3, True),
])
def test_which_tenders_get_an_opening_key(kit, mode, custodians, has_key):
    tender = kit.tender(mode=mode, custodians=custodians)
    assert (tender.opening_key_id is not None) is has_key
    assert len(opening_key.shares_of(tender)) == (custodians if has_key else 0)
    sealing = kit.api_as(kit.create_person()).get(f"/api/tenders/{tender.id}/sealing").get_json()
    assert sealing["recipients"]["tender_key"] is has_key
    assert sealing["key_mode"] == ("split" if mode == "double_envelope" else "single")


def _draft(kit, holders, **overrides):
    values = {"decryption_mode": "custodians", "custodian_threshold": 2, "custodian_ids": [p.id for p in holders]}
    tender = kit.create_tender(**{**values, **overrides})
    db.session.commit()
    return tender


def test_publication_is_refused_when_a_custodian_has_no_valid_certificate(kit):
    certified = [kit.create_custodian()[0] for _ in range(2)]
    bare = kit.create_person(roles=("custodian",), name="Wang Wu")
    tender = _draft(kit, [*certified, bare])
    err = refused(RulesViolated, bidding.publish_tender, staff(tender), tender, expected_version=tender.version)
    assert err.code == "custodian_certificate_missing" and "Wang Wu" in str(err.to_dict()["message"])
    assert tender.status == TenderStatus.DRAFT and tender.opening_key_id is None
    assert db.session.scalar(select(func.count()).select_from(OpeningKeyShare)) == 0

    key, _ = kit.certify(person=bare)
    cert = db.session.scalar(select(Certificate).where(Certificate.person_id == bare.id))
    revoke_certificate(Actor.system(source="test"), cert, "key_compromise")
    db.session.commit()
    err = refused(RulesViolated, bidding.publish_tender, staff(tender), tender, expected_version=tender.version)
    assert err.code == "custodian_certificate_missing"


def test_an_expired_certificate_does_not_count(kit):
    holders = [kit.create_person(roles=("custodian",)) for _ in range(2)]
    for p in holders:
        kit.certify(person=p, validity_days=1)
    tender = _draft(kit, holders)
    clock.travel(timedelta(days=2))
    err = refused(RulesViolated, bidding.publish_tender, staff(tender), tender, expected_version=tender.version)
    assert err.code == "custodian_certificate_missing"


def test_one_custodian_alone_must_never_hold_the_whole_key(kit):
    holders = [kit.create_custodian()[0] for _ in range(3)]
    tender = _draft(kit, holders, custodian_threshold=1)
    err = refused(RulesViolated, bidding.publish_tender, staff(tender), tender, expected_version=tender.version)
    assert err.code == "custodian_threshold_too_low"


def test_a_double_envelope_tender_needs_custodians(kit):
    tender = kit.create_tender(decryption_mode="double_envelope")
    db.session.commit()
    err = refused(RulesViolated, bidding.publish_tender, staff(tender), tender, expected_version=tender.version)
    assert err.code == "custodians_required"


def test_no_private_key_is_kept_in_the_share_rows(kit):
    tender = kit.tender(custodians=3)
    rebuilt = kit.opening_private_key(tender)
    scalar = rebuilt.private_numbers().private_value.to_bytes(32, "big")
    for row in opening_key.shares_of(tender):
        assert scalar not in row.encrypted_share and len(row.encrypted_share) == shamir.SEALED_SIZE
    assert keys.public_key_pem(rebuilt).decode() == tender.opening_public_key_pem
