"""Submission in one request: the same receipt, refusals, audit records and deadline rules as the resumable path."""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bidding import sealed_group, sealed_single, sealed_spool, submissions
from bidding.models import Lot, Tender
from bidding.sealed_models import Bid, BidUpload, LogEntry, UploadStatus
from bidding.sealed_spool import spool_dir
from core import storage
from core.audit import AuditEvent
from core.clock import clock
from core.db import db
from core.storage import default_store
from crypto import envelope as E
from crypto import keys, merkle
from crypto.receipt import parse_log_entry
from tests.bidding.conftest import actions
from tests.bidding.sealed_support import (  # noqa: F401  (kit_fixture is the kit fixture)
    check_receipt,
    finalize,
    kit_fixture,
    lot_of,
    past_deadline,
    submit,
)


def whole(client, tender, lot, envelope: bytes, *, sha256: str | None = None, **query):
    params = "&".join(f"{k}={v}" for k, v in {"sha256": sha256 or hashlib.sha256(envelope).hexdigest(),
                                               **query}.items())
    return client.post(f"/api/tenders/{tender.id}/lots/{lot.id}/bids?{params}", data=envelope,
                       headers={"Content-Type": "application/octet-stream"})


def counts(tender) -> tuple[int, int, int]:
    db.session.expire_all()
    return (db.session.scalar(select(func.count()).select_from(LogEntry).where(LogEntry.tender_id == tender.id)),
            db.session.scalar(select(func.count()).select_from(Bid)),
            db.session.scalar(select(func.count()).select_from(BidUpload)))


def spooled() -> list:
    return list(spool_dir().glob("*")) if spool_dir().exists() else []


def test_one_request_gives_the_same_receipt_entry_and_audit_as_the_resumable_path(kit):
    tender = kit.tender()
    lot, one, other = lot_of(tender), kit.bidder(), kit.bidder()
    envelope = kit.seal(tender, lot, one)
    response = whole(one.client, tender, lot, envelope)
    assert response.status_code == 201, response.get_json()
    data = response.get_json()
    receipt = check_receipt(one.client, data, envelope)
    assert (receipt.tender, receipt.lot, receipt.bid_version) == (tender.code, lot.code, 1)
    assert receipt.bidder == data["bidder_commitment"]["commitment"]
    assert data["bid"]["state"] == "current" and data["consistency"] is None
    entry = parse_log_entry(base64.b64decode(data["log_entry"]))
    assert entry["kind"] == "submission" and entry["envelope_sha256"] == hashlib.sha256(envelope).hexdigest()
    assert default_store().read_bytes(hashlib.sha256(envelope).hexdigest()) == envelope
    assert spooled() == []  # straight into the store
    upload = db.session.scalars(select(BidUpload)).one()
    assert upload.status == UploadStatus.FINALIZED and upload.bid.public_id == data["bid"]["id"]
    before = len(actions(tender.id))
    # the resumable path of another bidder records the start of its upload, then the same bid.submit
    assert submit(other.client, tender, lot, kit.seal(tender, lot, other)).status_code == 201
    assert actions(tender.id)[before - 1:] == ["bid.submit", "bid.upload.start", "bid.submit"]
    submits = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "bid.submit")
                                 .order_by(AuditEvent.seq)).all()
    assert submits[0].summary["upload"] == upload.id and submits[0].summary["bid"] == data["bid"]["id"]
    # the uploads list and the bid pages see it as any other bid
    my = one.client.get(f"/api/my/bids?tender_id={tender.id}").get_json()
    assert my[0]["current"]["id"] == data["bid"]["id"] and my[0]["next_bid_version"] == 2


def test_replacement_and_withdrawal_in_one_request(kit):
    tender = kit.tender()
    lot, bidder = lot_of(tender), kit.bidder()
    first_env = kit.seal(tender, lot, bidder)
    first = whole(bidder.client, tender, lot, first_env).get_json()
    again = whole(bidder.client, tender, lot, first_env)  # sealed for version 1: the next version is 2
    assert again.status_code == 422 and again.get_json()["code"] == "wrong_version"
    second_env = kit.seal(tender, lot, bidder, version=2, plaintext=b"a better price")
    second = whole(bidder.client, tender, lot, second_env)
    assert second.status_code == 201, second.get_json()
    data = second.get_json()
    check_receipt(bidder.client, data, second_env)
    entry = parse_log_entry(base64.b64decode(data["log_entry"]))
    assert entry["kind"] == "replacement" and entry["replaces_sha256"] == hashlib.sha256(first_env).hexdigest()
    first_head, second_head = first["receipt"]["body"]["tree_head"], data["receipt"]["body"]["tree_head"]
    merkle.verify_consistency(data["consistency"]["from_size"], data["consistency"]["to_size"],
                              bytes.fromhex(first_head["body"]["root_hash"]),
                              bytes.fromhex(second_head["body"]["root_hash"]),
                              [bytes.fromhex(h) for h in data["consistency"]["proof"]])
    assert actions(tender.id)[-1] == "bid.replace"
    assert bidder.client.post(f"/api/tenders/{tender.id}/lots/{lot.id}/withdraw").status_code == 200
    third = whole(bidder.client, tender, lot, kit.seal(tender, lot, bidder, version=3))
    assert third.status_code == 201 and third.get_json()["bid"]["version"] == 3
    states = db.session.scalars(select(Bid.is_current).order_by(Bid.version)).all()
    assert states == [False, False, True]


def _refused(kit, tender, lot, bidder, envelope, *, status=422, **query) -> dict:
    """Send ``envelope`` in one request; assert it is refused and nothing is accepted or left on disk."""
    log_before, bids_before, _ = counts(tender)
    response = whole(bidder.client, tender, lot, envelope, **query)
    assert response.status_code == status, response.get_json()
    error = response.get_json()
    assert set(error) == {"code", "message", "fields"}
    log_after, bids_after, _ = counts(tender)
    assert (log_after, bids_after) == (log_before, bids_before)
    assert spooled() == []
    return error


@pytest.fixture
def setup(kit):
    tender = kit.tender(lots=2)
    return tender, lot_of(tender, 0), lot_of(tender, 1), kit.bidder()


@pytest.mark.parametrize("case, code", [
    ("other_lot", "wrong_lot"),
    ("hash", "envelope_tampered"),
    ("tampered", "signature_invalid"),
    ("someone_else", "signed_by_someone_else"),
    ("not_an_envelope", "not_an_envelope"),
    ("no_tender_key", "tender_key_missing"),
])
def test_a_refused_envelope_is_recorded_as_failed_and_nothing_else_changes(kit, setup, case, code):
    tender, lot, lot2, bidder = setup
    envelope = kit.seal(tender, lot, bidder)
    query: dict = {}
    target = lot
    if case == "other_lot":
        target = lot2
    elif case == "hash":
        query["sha256"] = hashlib.sha256(b"other").hexdigest()
    elif case == "tampered":
        envelope = bytearray(envelope)
        envelope[len(envelope) // 2] ^= 0x01
        envelope = bytes(envelope)
    elif case == "someone_else":
        envelope = kit.seal(tender, lot, bidder, signer=keys.generate_private_key())
    elif case == "not_an_envelope":
        envelope = b"PK\x03\x04 a plain zip, not sealed" * 20
    elif case == "no_tender_key":
        envelope = kit.seal(tender, lot, bidder, recipients=[E.Recipient(E.ROLE_BIDDER, bidder.own_key.public_key())])
    error = _refused(kit, tender, target, bidder, envelope, **query)
    assert error["code"] == code
    upload = db.session.scalars(select(BidUpload)).one()
    assert upload.status == UploadStatus.FAILED and upload.failure_code == code
    assert actions(tender.id)[-1] == "bid.upload.refused"
    event = db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert event.summary["upload"] == upload.id and event.summary["code"] == code
    assert event.summary["size"] == len(envelope) and event.summary["lot"] == target.code
    state = bidder.client.get(f"/api/uploads/{upload.id}").get_json()
    assert state["status"] == "failed" and state["failure_code"] == code


def test_size_limits_are_refused_before_the_body_is_read(kit, setup, monkeypatch):
    tender, lot, _, bidder = setup
    envelope = kit.seal(tender, lot, bidder)
    lot.max_bid_bytes = len(envelope) - 1
    db.session.commit()
    error = _refused(kit, tender, lot, bidder, envelope, status=413)
    assert error["code"] == "too_large" and f"at most {len(envelope) - 1} bytes" in error["message"]
    monkeypatch.setattr(submissions, "MAX_CHUNK", 100)  # a server with a smaller single-request limit
    lot.max_bid_bytes = None
    db.session.commit()
    error = _refused(kit, tender, lot, bidder, envelope, status=413)
    assert error["code"] == "too_large_for_one_request" and "resumable" in error["message"]
    assert counts(tender)[2] == 0  # no upload row for any of them
    empty = _refused(kit, tender, lot, bidder, b"", sha256="0" * 64)
    assert empty["code"] == "validation_failed" and "body" in empty["fields"]
    bad = whole(bidder.client, tender, lot, envelope, sha256="xyz")
    assert bad.status_code == 422 and "sha256" in bad.get_json()["fields"]


def test_wrong_addresses_and_strangers(app, kit, setup):
    tender, lot, _, bidder = setup
    envelope = kit.seal(tender, lot, bidder)
    other = kit.tender()
    foreign = whole(bidder.client, tender, lot_of(other), envelope)
    assert foreign.status_code == 404 and foreign.get_json()["code"] == "lot_not_found"
    anonymous = app.test_client().post(f"/api/tenders/{tender.id}/lots/{lot.id}/bids?sha256={'0' * 64}",
                                       data=envelope)
    assert anonymous.status_code == 401
    assert counts(tender)[2] == 0


def test_after_the_deadline_nothing_is_taken(kit):
    tender = kit.tender()
    lot, bidder = lot_of(tender), kit.bidder()
    envelope = kit.seal(tender, lot, bidder)
    past_deadline(tender, clock, timedelta(milliseconds=1))
    response = whole(bidder.client, tender, lot, envelope)  # the request closes the tender first
    assert response.status_code == 422, response.get_json()
    error = response.get_json()
    assert error["code"] == "deadline_passed" and "deadline" in error["message"]
    assert counts(tender)[1:] == (0, 0) and spooled() == []
    kinds = [e.kind for e in db.session.scalars(select(LogEntry).where(LogEntry.tender_id == tender.id))]
    assert "submission" not in kinds


def test_the_clock_at_the_lock_decides_even_if_the_envelope_was_checked_in_time(kit, monkeypatch):
    tender = kit.tender()
    lot, bidder = lot_of(tender), kit.bidder()
    envelope = kit.seal(tender, lot, bidder)
    deadline = tender.bid_deadline_at
    real_lock = sealed_group.lock_tender_and_log

    def lock_at_the_deadline(tender_id):  # the deadline instant arrives between the check and the lock
        clock.freeze(deadline)
        return real_lock(tender_id)

    monkeypatch.setattr(sealed_group, "lock_tender_and_log", lock_at_the_deadline)
    response = whole(bidder.client, tender, lot, envelope)
    assert response.status_code == 422 and response.get_json()["code"] == "deadline_passed"
    db.session.expire_all()
    upload = db.session.scalars(select(BidUpload)).one()
    assert upload.status == UploadStatus.WITHDRAWN and upload.failure_code == "deadline_passed"
    assert db.session.scalar(select(func.count()).select_from(Bid)) == 0
    assert actions(tender.id)[-1] == "bid.upload.withdrawn"


def test_a_crash_before_the_commit_leaves_no_row_no_entry_and_no_record(kit, monkeypatch):
    tender = kit.tender()
    lot, bidder = lot_of(tender), kit.bidder()
    envelope = kit.seal(tender, lot, bidder)
    log_before, actions_before = counts(tender)[0], actions(tender.id)

    def crash():
        raise RuntimeError("the process dies before the commit")

    monkeypatch.setattr(sealed_group, "commit_keeping_loaded", crash)
    incoming = sealed_spool.Incoming([envelope[:1000], envelope[1000:]])
    with pytest.raises(RuntimeError):
        sealed_single.submit_whole(bidder.actor, tender, lot, sha256=hashlib.sha256(envelope).hexdigest(),
                                   incoming=incoming, size=len(envelope))
    db.session.rollback()
    assert counts(tender) == (log_before, 0, 0)
    assert actions(tender.id) == actions_before and spooled() == [] and incoming_files() == []
    monkeypatch.undo()  # a retry goes through as if nothing had happened (the stored envelope is reused)
    tender, lot = db.session.get(Tender, tender.id), db.session.get(Lot, lot.id)
    response = whole(bidder.client, tender, lot, envelope)
    assert response.status_code == 201, response.get_json()
    check_receipt(bidder.client, response.get_json(), envelope)


def test_openapi_documents_the_endpoint(app):
    spec = app.test_client().get("/api/openapi.json").get_json()
    operation = spec["paths"]["/api/tenders/{tender_id}/lots/{lot_id}/bids"]["post"]
    assert {"201", "413"} <= set(operation["responses"])
    assert any(p["name"] == "sha256" for p in operation["parameters"])
    assert "application/octet-stream" in operation["requestBody"]["content"]


def incoming_files() -> list:
    root = default_store().root
    return [p for p in root.iterdir() if p.name.startswith(".incoming-")] if root.exists() else []


def test_a_body_shorter_than_its_length_is_refused_and_leaves_nothing(kit, setup):
    tender, lot, _, bidder = setup
    envelope = kit.seal(tender, lot, bidder)
    response = bidder.client.post(f"/api/tenders/{tender.id}/lots/{lot.id}/bids?sha256="
                                  f"{hashlib.sha256(envelope).hexdigest()}", data=envelope,
                                  headers={"Content-Type": "application/octet-stream"},
                                  environ_overrides={"CONTENT_LENGTH": str(len(envelope) + 100)})
    assert response.status_code in (400, 422), response.get_data(as_text=True)
    assert counts(tender)[1:] == (0, 0) and incoming_files() == []


def test_refused_and_accepted_envelopes_leave_no_incoming_file(kit, setup):
    tender, lot, _, bidder = setup
    envelope = bytearray(kit.seal(tender, lot, bidder))
    envelope[len(envelope) // 2] ^= 0x01
    assert whole(bidder.client, tender, lot, bytes(envelope)).status_code == 422
    assert incoming_files() == []
    good = kit.seal(tender, lot, bidder)
    assert whole(bidder.client, tender, lot, good).status_code == 201
    assert incoming_files() == [] and default_store().read_bytes(hashlib.sha256(good).hexdigest()) == good


def test_an_accepted_envelope_leaves_the_page_cache_once_on_disk(kit, setup, monkeypatch):
    tender, lot, _, bidder = setup
    envelope = kit.seal(tender, lot, bidder)
    dropped: list[int] = []
    monkeypatch.setattr(storage, "drop_cached_pages", lambda fd: dropped.append(os.fstat(fd).st_size))
    response = whole(bidder.client, tender, lot, envelope)
    assert response.status_code == 201, response.get_json()
    assert dropped == [len(envelope)]  # the stored envelope, once, after its fsync
    assert default_store().read_bytes(hashlib.sha256(envelope).hexdigest()) == envelope
