"""Bad input is refused with a clear reason and changes nothing: no bid, no log entry, the bytes discarded."""

from __future__ import annotations

import hashlib
import os

import pytest
from sqlalchemy import func, select

from bidding.sealed_models import Bid, BidUpload, LogEntry, UploadStatus
from core.actor import Actor
from core.db import db
from core.identity.ca import revoke_certificate
from core.identity.models import Certificate
from crypto import envelope as E
from crypto import keys
from tests.bidding.conftest import actions
from tests.bidding.sealed_support import (  # noqa: F401  (kit_fixture is the kit fixture)
    SEGMENT,
    finalize,
    keys_load,
    kit_fixture,
    lot_of,
    put,
    send,
    start,
    submit,
)


def log_size(tender) -> int:
    return db.session.scalar(select(func.count()).select_from(LogEntry).where(LogEntry.tender_id == tender.id))


def refused_at_finalize(kit, tender, lot, bidder, envelope: bytes, *, sha256: str | None = None):
    """Upload ``envelope`` completely and finalize; assert nothing was accepted; return the error body."""
    before_log, before_bids = log_size(tender), db.session.scalar(select(func.count()).select_from(Bid))
    body = {"sha256": sha256} if sha256 else {}
    created = start(bidder.client, tender, lot, envelope, **body)
    assert created.status_code == 201, created.get_json()
    upload_id = created.get_json()["id"]
    send(bidder.client, upload_id, envelope)
    response = finalize(bidder.client, upload_id)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()
    assert set(error) == {"code", "message", "fields"}
    db.session.expire_all()
    assert log_size(tender) == before_log
    assert db.session.scalar(select(func.count()).select_from(Bid)) == before_bids
    upload = db.session.get(BidUpload, upload_id)
    assert upload.status == UploadStatus.FAILED and upload.failure_code == error["code"]
    assert actions(tender.id)[-1] == "bid.upload.refused"
    again = put(bidder.client, upload_id, 0, envelope[:10])
    assert again.status_code == 422 and again.get_json()["code"] == "upload_failed"
    return error


@pytest.fixture
def setup(kit):
    tender = kit.tender(lots=2)
    return tender, lot_of(tender, 0), lot_of(tender, 1), kit.bidder()


def test_envelope_for_another_tender(kit, setup):
    tender, lot, _, bidder = setup
    other = kit.tender()
    envelope = kit.seal(other, lot_of(other), bidder)
    error = refused_at_finalize(kit, tender, lot, bidder, envelope)
    assert error["code"] == "wrong_tender" and other.code in error["message"] and tender.code in error["message"]


def test_envelope_for_another_lot(kit, setup):
    tender, lot1, lot2, bidder = setup
    error = refused_at_finalize(kit, tender, lot2, bidder, kit.seal(tender, lot1, bidder))
    assert error["code"] == "wrong_lot" and "lot L1, not for lot L2" in error["message"]


def test_envelope_sealed_for_the_wrong_version(kit, setup):
    tender, lot, _, bidder = setup
    error = refused_at_finalize(kit, tender, lot, bidder, kit.seal(tender, lot, bidder, version=2))
    assert error["code"] == "wrong_version" and "next version for this lot is 1" in error["message"]


def test_not_an_envelope(kit, setup):
    tender, lot, _, bidder = setup
    error = refused_at_finalize(kit, tender, lot, bidder, os.urandom(3000))
    assert error["code"] == "not_an_envelope" and "Not an ebid envelope" in error["message"]


def test_signature_by_someone_else(kit, setup):
    tender, lot, _, bidder = setup
    stranger = keys.generate_private_key()  # not certified for the bidder
    error = refused_at_finalize(kit, tender, lot, bidder, kit.seal(tender, lot, bidder, signer=stranger))
    assert error["code"] == "signed_by_someone_else"
    other = kit.bidder()  # certified, but for another organisation
    error = refused_at_finalize(kit, tender, lot, bidder, kit.seal(tender, lot, bidder, signer=other.signing_key))
    assert error["code"] == "signed_by_someone_else"


def test_replayed_envelope_of_another_bidder(kit, setup):
    tender, lot, _, victim = setup
    envelope = kit.seal(tender, lot, victim)
    assert submit(victim.client, tender, lot, envelope).status_code == 201
    thief = kit.bidder()
    error = refused_at_finalize(kit, tender, lot, thief, envelope)
    assert error["code"] == "wrong_bidder" and thief.org.uscc in error["message"]
    assert db.session.scalar(select(Bid.organisation_id)) == victim.org.id


def test_declared_hash_that_does_not_match(kit, setup):
    tender, lot, _, bidder = setup
    envelope = kit.seal(tender, lot, bidder)
    error = refused_at_finalize(kit, tender, lot, bidder, envelope, sha256=hashlib.sha256(b"other").hexdigest())
    assert error["code"] == "envelope_tampered" and "SHA-256" in error["message"]


def test_tampered_envelope_bytes(kit, setup):
    tender, lot, _, bidder = setup
    envelope = bytearray(kit.seal(tender, lot, bidder))
    envelope[len(envelope) // 2] ^= 0x01
    error = refused_at_finalize(kit, tender, lot, bidder, bytes(envelope))
    assert error["code"] == "signature_invalid"


def test_envelope_not_wrapped_for_the_tender_key(kit, setup):
    tender, lot, _, bidder = setup
    envelope = kit.seal(tender, lot, bidder, recipients=[E.Recipient(E.ROLE_BIDDER, bidder.own_key.public_key())])
    error = refused_at_finalize(kit, tender, lot, bidder, envelope)
    assert error["code"] == "tender_key_missing" and tender.opening_key_id[:16] in error["message"]


def test_envelope_wrapped_for_a_foreign_key(kit, setup):
    tender, lot, _, bidder = setup
    other = kit.tender()
    foreign = [E.Recipient(E.ROLE_TENDER, keys_load(other.opening_public_key_pem)),
               E.Recipient(E.ROLE_BIDDER, bidder.own_key.public_key())]
    error = refused_at_finalize(kit, tender, lot, bidder, kit.seal(tender, lot, bidder, recipients=foreign))
    assert error["code"] == "foreign_tender_key"


def test_envelope_without_the_bidder_key_when_the_bidder_decrypts(kit, setup):
    tender, lot, _, bidder = setup
    only_tender = [E.Recipient(E.ROLE_TENDER, keys_load(tender.opening_public_key_pem))]
    error = refused_at_finalize(kit, tender, lot, bidder, kit.seal(tender, lot, bidder, recipients=only_tender))
    assert error["code"] == "bidder_key_missing"


def test_double_envelope_tender_needs_split_mode(kit):
    tender = kit.tender(mode="double_envelope")
    lot, bidder = lot_of(tender), kit.bidder()
    error = refused_at_finalize(kit, tender, lot, bidder, kit.seal(tender, lot, bidder, key_mode=E.KEY_MODE_SINGLE))
    assert error["code"] == "double_envelope_required"
    assert submit(bidder.client, tender, lot, kit.seal(tender, lot, bidder)).status_code == 201


def test_revoked_signing_certificate(kit, setup):
    tender, lot, _, bidder = setup
    envelope = kit.seal(tender, lot, bidder)
    row = db.session.scalar(select(Certificate).where(Certificate.organisation_id == bidder.org.id))
    revoke_certificate(Actor.system(source="test"), row, "key_compromise")
    db.session.commit()
    error = refused_at_finalize(kit, tender, lot, bidder, envelope)
    assert error["code"] == "signer_certificate_refused" and "revoked" in error["message"]


def test_a_person_certificate_of_the_acting_bidder_may_sign(kit, setup):
    tender, lot, _, bidder = setup
    personal_key, _ = kit.certify(person=bidder.person)
    db.session.commit()
    response = submit(bidder.client, tender, lot, kit.seal(tender, lot, bidder, signer=personal_key))
    assert response.status_code == 201, response.get_json()


def test_oversize_is_refused_before_any_byte(kit, setup):
    tender, lot, _, bidder = setup
    lot.max_bid_bytes = 2000
    db.session.commit()
    response = bidder.client.post(f"/api/tenders/{tender.id}/lots/{lot.id}/uploads",
                                  json={"size": 2001, "sha256": "0" * 64})
    assert response.status_code == 413 and response.get_json()["code"] == "too_large"
    assert "at most 2000 bytes" in response.get_json()["message"]
    assert db.session.scalar(select(func.count()).select_from(BidUpload)) == 0
    envelope = kit.seal(tender, lot, bidder, plaintext=b"x")
    upload_id = start(bidder.client, tender, lot, envelope).get_json()["id"]
    beyond = put(bidder.client, upload_id, 0, envelope + b"extra")
    assert beyond.status_code == 413 and beyond.get_json()["code"] == "beyond_declared_size"


def test_bad_declarations_and_wrong_addresses(app, kit, setup):
    tender, lot, _, bidder = setup
    bad = bidder.client.post(f"/api/tenders/{tender.id}/lots/{lot.id}/uploads", json={"size": 0, "sha256": "xyz"})
    assert bad.status_code == 422 and {"size", "sha256"} <= set(bad.get_json()["fields"])
    other = kit.tender()
    foreign_lot = bidder.client.post(f"/api/tenders/{tender.id}/lots/{lot_of(other).id}/uploads",
                                     json={"size": 10, "sha256": "0" * 64})
    assert foreign_lot.status_code == 404 and foreign_lot.get_json()["code"] == "lot_not_found"
    envelope = kit.seal(tender, lot, bidder)
    upload_id = start(bidder.client, tender, lot, envelope).get_json()["id"]
    intruder = kit.bidder()
    for response in (intruder.client.get(f"/api/uploads/{upload_id}"), put(intruder.client, upload_id, 0, b"x"),
                     finalize(intruder.client, upload_id)):
        assert response.status_code == 404 and response.get_json()["code"] == "upload_not_found"
    assert app.test_client().post(f"/api/uploads/{upload_id}/finalize").status_code == 401


def test_the_tenderer_cannot_bid_on_its_own_tender(kit, setup):
    tender, lot, _, _ = setup
    insider = kit.bidder(org=tender.tenderer)
    response = start(insider.client, tender, lot, kit.seal(tender, lot, insider))
    assert response.status_code == 403 and response.get_json()["code"] == "own_tender"


def test_segment_size_is_the_clients_choice(kit, setup):
    tender, lot, _, bidder = setup
    envelope = kit.seal(tender, lot, bidder, segment_size=SEGMENT * 4)
    assert submit(bidder.client, tender, lot, envelope).status_code == 201
