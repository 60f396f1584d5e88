"""Sealed-bid upload through the API: chunks, resume, finalize with a receipt a bidder verifies offline."""

from __future__ import annotations

import base64
import hashlib
import os

from sqlalchemy import func, select

from bidding.sealed_models import Bid, BidUpload, UploadStatus
from bidding.sealed_spool import spool_path
from core.db import db
from core.storage import default_store
from crypto import envelope as E
from crypto import merkle
from crypto.receipt import parse_log_entry
from ebid.app import create_app
from tests.bidding.conftest import actions
from tests.bidding.sealed_support import (  # noqa: F401  (kit_fixture is the kit fixture)
    check_receipt,
    finalize,
    kit_fixture,
    lot_of,
    put,
    send,
    start,
    submit,
)
from tests.conftest import FreshContextClient


def test_upload_in_chunks_then_finalize_gives_a_verifiable_receipt(kit):
    tender = kit.tender()
    lot, bidder = lot_of(tender), kit.bidder()
    envelope = kit.seal(tender, lot, bidder)
    created = start(bidder.client, tender, lot, envelope)
    assert created.status_code == 201
    upload = created.get_json()
    assert upload["received"] == 0 and upload["status"] == "open" and len(upload["id"]) == 32

    send(bidder.client, upload["id"], envelope, chunk=700)
    assert bidder.client.get(f"/api/uploads/{upload['id']}").get_json()["received"] == len(envelope)
    response = finalize(bidder.client, upload["id"])
    assert response.status_code == 201, response.get_json()
    data = response.get_json()

    receipt = check_receipt(bidder.client, data, envelope)
    assert (receipt.tender, receipt.lot, receipt.bid_version) == (tender.code, lot.code, 1)
    assert receipt.bidder == data["bidder_commitment"]["commitment"]
    opening = data["bidder_commitment"]
    assert hashlib.sha256(b"ebid/bidder-commitment/v1\n" + bytes.fromhex(opening["salt"])
                          + opening["uscc"].encode()).hexdigest() == receipt.bidder
    assert opening["uscc"] == bidder.org.uscc
    assert data["bid"]["state"] == "current" and data["bid"]["version"] == 1
    # content-addressed, byte-identical, and the spool is gone
    sha = hashlib.sha256(envelope).hexdigest()
    assert default_store().read_bytes(sha) == envelope
    assert bidder.client.get(f"/api/uploads/{upload['id']}").get_json()["status"] == "finalized"
    assert "bid.submit" in actions(tender.id)
    # the envelope opens with the key the custodians rebuild, and with the bidder's own key
    opened = E.open_bytes(envelope, signer_public_key=bidder.signing_key.public_key(),
                          private_keys=[kit.opening_private_key(tender)])
    assert opened.startswith(b"bid of")


def test_finalize_twice_returns_the_same_receipt(kit):
    tender = kit.tender(custodians=0, mode="bidder")
    lot, bidder = lot_of(tender), kit.bidder()
    envelope = kit.seal(tender, lot, bidder)
    first = submit(bidder.client, tender, lot, envelope)
    upload_id = db.session.scalar(select(BidUpload.id))
    again = finalize(bidder.client, upload_id)
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json()["receipt"] == first.get_json()["receipt"]
    assert db.session.scalar(select(func.count()).select_from(Bid)) == 1


def test_a_resent_chunk_is_harmless_and_a_gap_or_different_bytes_are_refused(kit):
    tender = kit.tender(custodians=0, mode="bidder")
    lot, bidder = lot_of(tender), kit.bidder()
    envelope = kit.seal(tender, lot, bidder)
    upload_id = start(bidder.client, tender, lot, envelope).get_json()["id"]
    assert put(bidder.client, upload_id, 0, envelope[:500]).get_json()["received"] == 500
    assert put(bidder.client, upload_id, 0, envelope[:500]).get_json()["received"] == 500  # resent
    assert put(bidder.client, upload_id, 250, envelope[250:800]).get_json()["received"] == 800  # overlaps
    gap = put(bidder.client, upload_id, 900, envelope[900:1000])
    assert gap.status_code == 409 and gap.get_json()["code"] == "offset_mismatch"
    assert "resume at offset 800" in gap.get_json()["message"]
    wrong = put(bidder.client, upload_id, 700, b"x" * 200)
    assert wrong.status_code == 409 and "differs" in wrong.get_json()["message"]
    early = finalize(bidder.client, upload_id)
    assert early.status_code == 409 and early.get_json()["code"] == "upload_incomplete"
    assert "800 of the" in early.get_json()["message"]
    send(bidder.client, upload_id, envelope, start_at=800)
    assert finalize(bidder.client, upload_id).status_code == 201


def test_replacement_keeps_one_current_bid_and_links_the_receipts(kit):
    tender = kit.tender()
    lot, bidder = lot_of(tender), kit.bidder()
    first_env = kit.seal(tender, lot, bidder, version=1)
    first = submit(bidder.client, tender, lot, first_env).get_json()
    my = bidder.client.get(f"/api/my/bids?tender_id={tender.id}").get_json()
    assert my[0]["next_bid_version"] == 2 and my[0]["current"]["id"] == first["bid"]["id"]

    second_env = kit.seal(tender, lot, bidder, version=2, plaintext=b"a better price")
    second = submit(bidder.client, tender, lot, second_env).get_json()
    check_receipt(bidder.client, second, second_env)
    entry = parse_log_entry(base64.b64decode(second["log_entry"]))
    assert entry["kind"] == "replacement" and entry["replaces_sha256"] == hashlib.sha256(first_env).hexdigest()
    # the bidder can check that the log it saw at version 1 is a prefix of the one at version 2
    first_head, second_head = first["receipt"]["body"]["tree_head"], second["receipt"]["body"]["tree_head"]
    consistency = second["consistency"]
    assert consistency["from_size"] == first_head["body"]["tree_size"]
    merkle.verify_consistency(consistency["from_size"], consistency["to_size"],
                              bytes.fromhex(first_head["body"]["root_hash"]),
                              bytes.fromhex(second_head["body"]["root_hash"]),
                              [bytes.fromhex(h) for h in consistency["proof"]])
    bids = db.session.scalars(select(Bid).order_by(Bid.version)).all()
    assert [(b.version, b.state) for b in bids] == [(1, "replaced"), (2, "current")]
    my = bidder.client.get(f"/api/my/bids?tender_id={tender.id}").get_json()
    assert my[0]["current"]["version"] == 2 and [b["state"] for b in my[0]["history"]] == ["replaced", "current"]


def test_withdrawal_is_logged_and_a_new_bid_takes_the_next_version(kit):
    tender = kit.tender()
    lot, bidder = lot_of(tender), kit.bidder()
    submit(bidder.client, tender, lot, kit.seal(tender, lot, bidder))
    response = bidder.client.post(f"/api/tenders/{tender.id}/lots/{lot.id}/withdraw")
    assert response.status_code == 200, response.get_json()
    data = response.get_json()
    entry = base64.b64decode(data["log_entry"])
    assert parse_log_entry(entry)["kind"] == "withdrawal"
    head = data["tree_head"]["body"]
    merkle.verify_inclusion(merkle.leaf_hash(entry), data["log_index"], head["tree_size"],
                            [bytes.fromhex(h) for h in data["inclusion_proof"]], bytes.fromhex(head["root_hash"]))
    assert data["bid"]["state"] == "withdrawn"
    again = bidder.client.post(f"/api/tenders/{tender.id}/lots/{lot.id}/withdraw")
    assert again.status_code == 422 and again.get_json()["code"] == "no_bid"
    assert submit(bidder.client, tender, lot, kit.seal(tender, lot, bidder, version=2)).status_code == 201
    assert db.session.scalar(select(func.count()).select_from(Bid).where(Bid.is_current.is_(True))) == 1


def test_a_cancelled_upload_is_gone(kit):
    tender = kit.tender(custodians=0, mode="bidder")
    lot, bidder = lot_of(tender), kit.bidder()
    envelope = kit.seal(tender, lot, bidder)
    upload_id = start(bidder.client, tender, lot, envelope).get_json()["id"]
    put(bidder.client, upload_id, 0, envelope[:100])
    assert bidder.client.delete(f"/api/uploads/{upload_id}").get_json()["status"] == "cancelled"
    assert db.session.get(BidUpload, upload_id).status == UploadStatus.CANCELLED
    refused = put(bidder.client, upload_id, 100, envelope[100:200])
    assert refused.status_code == 422 and refused.get_json()["code"] == "upload_cancelled"


def test_an_upload_resumes_after_a_server_restart_and_the_envelope_is_byte_identical(kit, settings):
    tender = kit.tender(custodians=0, mode="bidder")
    lot, bidder = lot_of(tender), kit.bidder()
    envelope = kit.seal(tender, lot, bidder, plaintext=os.urandom(6000))
    upload_id = start(bidder.client, tender, lot, envelope).get_json()["id"]
    for offset in range(0, 2500, 500):
        assert put(bidder.client, upload_id, offset, envelope[offset:offset + 500]).status_code == 200
    assert spool_path(upload_id).stat().st_size == 2500

    restarted = create_app(settings)  # a new process: same database, same data folder, nothing in memory
    restarted.test_client_class = FreshContextClient
    restarted.config.update(WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=False)
    client = restarted.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = bidder.client.environ_base["HTTP_AUTHORIZATION"]
    resume_at = client.get(f"/api/uploads/{upload_id}").get_json()["received"]
    assert resume_at == 2500
    send(client, upload_id, envelope, chunk=1000, start_at=resume_at)
    response = finalize(client, upload_id)
    assert response.status_code == 201, response.get_json()
    check_receipt(client, response.get_json(), envelope)
    assert default_store().read_bytes(hashlib.sha256(envelope).hexdigest()) == envelope
    assert not spool_path(upload_id).exists()
