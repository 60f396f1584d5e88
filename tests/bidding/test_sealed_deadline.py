"""The bid deadline: enforced by status and clock, closing (withdrawn uploads, counts, final head), publicity."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest

import bidding
from bidding import sealed_spool, submissions
from bidding.errors import DeadlinePassed
from bidding.models import TenderStatus
from bidding.sealed_checks import check_envelope
from bidding.sealed_models import BidUpload, UploadStatus
from bidding.tasks import CLOSE_DUE, close_due_tenders
from core.clock import clock
from core.db import db
from core.tasks import beat_schedule
from crypto import merkle
from crypto.receipt import parse_log_entry, verify_tree_head
from tests.bidding.conftest import actions, staff
from tests.bidding.sealed_support import (  # noqa: F401  (kit_fixture is the kit fixture)
    check_receipt,
    finalize,
    kit_fixture,
    lot_of,
    past_deadline,
    send,
    start,
    submit,
    transparency_keys,
)


def test_the_closing_task_runs_every_ten_seconds():
    assert beat_schedule()[CLOSE_DUE]["schedule"] == 10.0


def test_a_late_finalize_is_refused_by_the_clock_even_if_nobody_closed_the_tender(kit):
    tender = kit.tender()
    lot, bidder = lot_of(tender), kit.bidder()
    envelope = kit.seal(tender, lot, bidder)
    upload_id = start(bidder.client, tender, lot, envelope).get_json()["id"]
    send(bidder.client, upload_id, envelope)
    upload = submissions.begin_finalize(bidder.actor, db.session.get(BidUpload, upload_id))
    checked = check_envelope(bidder.actor, upload)
    db.session.commit()
    clock.freeze(tender.bid_deadline_at)  # exactly the deadline: already too late; the scheduler has not run
    with pytest.raises(DeadlinePassed):
        submissions.complete(bidder.actor, upload, checked)
    db.session.rollback()
    assert db.session.get(bidding.models.Tender, tender.id).status == TenderStatus.PUBLISHED
    submissions.abandon(bidder.actor, upload_id, DeadlinePassed())
    db.session.commit()
    assert db.session.get(BidUpload, upload_id).status == UploadStatus.WITHDRAWN
    assert actions(tender.id)[-1] == "bid.upload.withdrawn"


def test_through_the_api_a_late_finalize_is_refused_and_counts_as_withdrawn(kit):
    tender = kit.tender()
    lot, bidder = lot_of(tender), kit.bidder()
    envelope = kit.seal(tender, lot, bidder)
    upload_id = start(bidder.client, tender, lot, envelope).get_json()["id"]
    send(bidder.client, upload_id, envelope)
    past_deadline(tender, clock, timedelta(milliseconds=1))
    response = finalize(bidder.client, upload_id)  # the request closes the tender first: the upload is withdrawn
    assert response.status_code == 422 and response.get_json()["code"] == "upload_withdrawn"
    assert "deadline" in response.get_json()["message"]
    assert db.session.get(BidUpload, upload_id).status == UploadStatus.WITHDRAWN
    assert not sealed_spool.spool_path(upload_id).exists()
    late = start(bidder.client, tender, lot, envelope)
    assert late.status_code == 422 and late.get_json()["code"] == "deadline_passed"


def _three_bids_and_one_unfinished(kit, tender):
    lot1, lot2 = lot_of(tender, 0), lot_of(tender, 1)
    bidders = [kit.bidder() for _ in range(4)]
    receipts = [submit(b.client, tender, lot1, kit.seal(tender, lot1, b)).get_json() for b in bidders[:3]]
    lone = bidders[3]
    receipts.append(submit(lone.client, tender, lot2, kit.seal(tender, lot2, lone)).get_json())
    late_env = kit.seal(tender, lot1, lone)
    unfinished = start(lone.client, tender, lot1, late_env).get_json()["id"]
    send(lone.client, unfinished, late_env[:500])
    return bidders, receipts, unfinished


def test_closing_fixes_the_set_publishes_the_final_head_and_counts(kit, app):
    tender = kit.tender(lots=2)
    bidders, receipts, unfinished = _three_bids_and_one_unfinished(kit, tender)
    public = app.test_client()
    assert public.get(f"/api/tenders/{tender.id}/bids/summary").status_code == 403
    past_deadline(tender, clock)
    assert close_due_tenders() == {str(tender.id): "opening"}
    db.session.expire_all()
    assert tender.status == TenderStatus.OPENING
    assert db.session.get(BidUpload, unfinished).status == UploadStatus.WITHDRAWN
    assert not sealed_spool.spool_path(unfinished).exists()
    assert close_due_tenders() == {}  # idempotent
    trail = actions(tender.id)
    assert trail.count("tender.close") == 1 and trail[-1] == "tender.opening"

    summary = public.get(f"/api/tenders/{tender.id}/bids/summary").get_json()
    assert summary["lots"] == {"L1": {"bids": 3, "opened": True}, "L2": {"bids": 1, "opened": False}}
    assert summary["outcome"] == "opening" and summary["withdrawn_uploads"] == 1
    heads = public.get(f"/api/tenders/{tender.id}/log/head").get_json()
    keys = transparency_keys(public)
    final = verify_tree_head(heads["final"], keys["log"])
    assert final.tree_size == summary["final_tree_size"]
    entries = public.get(f"/api/tenders/{tender.id}/log/entries?start=0&end={final.tree_size}").get_json()
    assert [e["index"] for e in entries] == list(range(final.tree_size))
    assert merkle.root_hash(merkle.leaf_hash(base64.b64decode(e["entry"])) for e in entries) == final.root_hash
    opening = parse_log_entry(base64.b64decode(entries[-1]["entry"]))
    assert opening["kind"] == "opening" and len(opening["bids"]) == 4
    published = json.dumps([e["body"] for e in entries])
    assert not any(b.org.uscc in published for b in bidders)  # bidders appear as commitments only
    for data in receipts:
        body = data["receipt"]["body"]
        proof = public.get(f"/api/tenders/{tender.id}/log/inclusion?index={body['log_index']}"
                           f"&size={final.tree_size}").get_json()
        merkle.verify_inclusion(bytes.fromhex(proof["leaf_hash"]), body["log_index"], final.tree_size,
                                [bytes.fromhex(h) for h in proof["proof"]], final.root_hash)
        assert proof["leaf_hash"] == merkle.leaf_hash(base64.b64decode(data["log_entry"])).hex()
        old = body["tree_head"]["body"]
        consistency = public.get(f"/api/tenders/{tender.id}/log/consistency?first={old['tree_size']}"
                                 f"&second={final.tree_size}").get_json()
        merkle.verify_consistency(old["tree_size"], final.tree_size, bytes.fromhex(old["root_hash"]),
                                  final.root_hash, [bytes.fromhex(h) for h in consistency["proof"]])
    openings = public.get(f"/api/tenders/{tender.id}/log/bidders").get_json()
    assert {o["uscc"] for o in openings} == {b.org.uscc for b in bidders}


def test_fewer_than_three_bids_fail_the_tender_and_tell_the_guarantees(kit):
    tender = kit.tender()
    lot = lot_of(tender)
    for _ in range(2):
        b = kit.bidder()
        submit(b.client, tender, lot, kit.seal(tender, lot, b))
    seen = []

    def receiver(sender, **extra):
        seen.append((sender.id, extra["at"]))

    bidding.tender_failed.connect(receiver)
    try:
        past_deadline(tender, clock)
        assert close_due_tenders() == {str(tender.id): "failed"}
    finally:
        bidding.tender_failed.disconnect(receiver)
    db.session.expire_all()  # the task ran in its own app context and session
    assert db.session.get(bidding.models.Tender, tender.id).status == TenderStatus.FAILED
    assert seen and seen[0][0] == tender.id
    bidders = kit.api_as(kit.create_person()).get(f"/api/tenders/{tender.id}/log/bidders")
    assert bidders.status_code == 403 and bidders.get_json()["code"] == "bidders_not_public"


def test_a_suspended_tender_is_locked_at_the_deadline_and_moves_on_when_answered(kit):
    tender = kit.tender()
    lot = lot_of(tender)
    bidders = [kit.bidder() for _ in range(3)]
    for b in bidders:
        submit(b.client, tender, lot, kit.seal(tender, lot, b))
    objection = bidding.raise_objection(bidders[0].actor, tender, "The specification favours one brand.")
    db.session.commit()
    assert tender.is_suspended
    past_deadline(tender, clock)
    assert close_due_tenders() == {str(tender.id): "closed_suspended"}
    db.session.expire_all()
    assert tender.status == TenderStatus.PUBLISHED and bidding.is_closed(tender)
    late = start(bidders[1].client, tender, lot, kit.seal(tender, lot, bidders[1], version=2))
    assert late.status_code == 422 and late.get_json()["code"] == "deadline_passed"
    assert close_due_tenders() == {}  # still suspended: nothing to do, and no second closing
    bidding.answer_objection(staff(tender), objection, "The specification names no brand.")
    db.session.commit()
    assert close_due_tenders() == {str(tender.id): "opening"}
    assert actions(tender.id).count("tender.close") == 1


def test_any_request_after_the_deadline_closes_the_tender(kit, app):
    tender = kit.tender()
    past_deadline(tender, clock)
    assert app.test_client().get("/api/transparency/keys").status_code == 200
    db.session.expire_all()
    assert tender.status == TenderStatus.FAILED and bidding.is_closed(tender)


def test_before_the_deadline_nobody_learns_whether_others_have_bid(kit, app):
    tender = kit.tender()
    lot = lot_of(tender)
    first, second = kit.bidder(), kit.bidder()
    data = submit(first.client, tender, lot, kit.seal(tender, lot, first)).get_json()
    index, size = data["bid"]["log_index"], data["bid"]["tree_size"]
    manager = kit.api_as(tender.created_by)
    for client in (app.test_client(), second.client, manager):
        for url in (f"/api/tenders/{tender.id}/bids/summary", f"/api/tenders/{tender.id}/log/head",
                    f"/api/tenders/{tender.id}/log/entries", f"/api/tenders/{tender.id}/log/bidders",
                    f"/api/tenders/{tender.id}/log/inclusion?index={index}&size={size}"):
            response = client.get(url)
            assert response.status_code == 403, (url, response.get_json())
        assert "bid" not in str(client.get(f"/api/tenders/{tender.id}/sealing").get_json().get("lots"))
    assert second.client.get(f"/api/my/bids?tender_id={tender.id}").get_json()[0]["current"] is None
    # the bidder itself may prove its own entry in the heads it was given
    own = first.client.get(f"/api/tenders/{tender.id}/log/inclusion?index={index}&size={size}")
    assert own.status_code == 200
    other_size = first.client.get(f"/api/tenders/{tender.id}/log/inclusion?index={index}&size={size - 1 or 1}")
    assert other_size.status_code in (403, 422)
