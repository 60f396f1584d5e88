"""The opening engine: check-in, the window, bidder keys, custodian shares, fallback, refusals, secrecy."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bidding import opening, opening_decrypt, opening_process
from bidding.opening_decrypt import RecordedRefusal
from bidding.opening_handoff import handoff_check
from bidding.opening_models import Announcement, BidOpeningStatus, DecryptMethod, OpeningPhase
from core.audit import AuditEvent
from core.clock import clock
from core.db import db
from core.errors import Forbidden
from tests.bidding.opening_support import make_opening_fixture  # noqa: F401
from tests.bidding.sealed_support import kit_fixture  # noqa: F401


def _send_key(o, bidder, key=None):
    opening_decrypt.submit_content_key(bidder.actor, o.tender.id, o.bid_of(bidder).public_id,
                                       key if key is not None else o.content_key(bidder))
    db.session.commit()
    return opening_process.process_pending(o.tender.id)


def _release(o, n, share=None):
    person, mine = o.share(n)
    from core.identity.access import actor_for
    result = opening_decrypt.release_share(actor_for(person, "custodian"), o.tender.id,
                                           share if share is not None else mine)
    db.session.commit()
    opening_process.process_pending(o.tender.id)
    return result


def _actions(prefix):
    return [a for a in db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)) if a.startswith(prefix)]


def test_bidders_decrypt_and_custodians_open_the_bid_whose_key_was_lost(make_opening):
    o = make_opening(4)
    for b in o.bidders:
        opening.check_in(b.actor, o.tender.id, remote_addr="203.0.113.9")
    db.session.commit()
    opening.start_decryption(o.host_actor, o.tender.id)
    db.session.commit()
    for b in o.bidders[:3]:
        assert _send_key(o, b) == 1
    lost = o.bidders[3]
    assert o.row_of(lost).status == BidOpeningStatus.PENDING
    _release(o, 0)  # early: kept, but not used before the window ends (bidder first)
    assert opening.get_session(o.tender.id).key_rebuilt_at is None
    clock.travel(timedelta(minutes=31))
    opening_process.advance_all(o.host_actor)
    assert o.row_of(lost).status == BidOpeningStatus.PENDING  # falls back to the custodians: one share so far
    _release(o, 2)
    db.session.expire_all()
    rows = {b.org.id: o.row_of(b) for b in o.bidders}
    assert all(r.status == BidOpeningStatus.DECRYPTED for r in rows.values())
    assert rows[lost.org.id].method == DecryptMethod.CUSTODIANS
    assert {r.method for r in (rows[b.org.id] for b in o.bidders[:3])} == {DecryptMethod.BIDDER}
    assert {oid: r.form["price"] for oid, r in rows.items()} == o.prices
    assert all(r.pending_key is None for r in rows.values())
    assert opening.get_session(o.tender.id).phase == OpeningPhase.DECRYPTED
    check = handoff_check(o.tender.id)
    assert check.ok, check.message
    assert len(check.opened) == 4
    opening.enter_record(o.host_actor, o.tender.id)
    db.session.commit()
    assert opening.get_session(o.tender.id).phase == OpeningPhase.RECORD
    # no secret in the audit trail
    details = " ".join(str(e.summary) for e in db.session.scalars(select(AuditEvent)))
    for b in o.bidders[:3]:
        assert o.content_key(b).hex() not in details


def test_wrong_content_key_is_refused_recorded_and_the_others_still_open(make_opening):
    o = make_opening(3, mode="bidder", custodians=0)
    opening.start_decryption(o.host_actor, o.tender.id)
    db.session.commit()
    victim = o.bidders[0]
    with pytest.raises(RecordedRefusal, match="does not open bid"):
        opening_decrypt.submit_content_key(victim.actor, o.tender.id, o.bid_of(victim).public_id, bytes(32))
    db.session.commit()  # the API commits the record of the refusal
    assert _actions("opening.refused") == ["opening.refused.wrong_content_key"]
    assert db.session.scalar(select(Announcement).where(Announcement.kind == "refused")) is not None
    assert o.row_of(victim).status == BidOpeningStatus.PENDING
    for b in o.bidders:
        _send_key(o, b)
    db.session.expire_all()
    assert {o.row_of(b).status for b in o.bidders} == {BidOpeningStatus.DECRYPTED}
    # another bidder's key for this bid: refused too
    with pytest.raises(Forbidden):
        opening_decrypt.submit_content_key(o.bidders[1].actor, o.tender.id, o.bid_of(victim).public_id, bytes(32))


def test_wrong_share_and_non_custodian_share_are_refused_and_recorded(make_opening, create_custodian):
    o = make_opening(3, mode="custodians")
    opening.start_decryption(o.host_actor, o.tender.id)
    db.session.commit()
    _person, good = o.share(0)
    from core.identity.access import actor_for
    outsider = create_custodian()[0]
    db.session.commit()
    with pytest.raises(RecordedRefusal, match="not a key custodian"):
        opening_decrypt.release_share(actor_for(outsider, "custodian"), o.tender.id, good)
    db.session.commit()
    wrong = bytearray(o.share(1)[1])
    wrong[-40] ^= 1  # the value, with a checksum that no longer matches: still refused as not the share
    for bad in (bytes(wrong), good):  # custodian 1 sends a damaged share, then custodian 0's share
        with pytest.raises(RecordedRefusal, match="not your share"):
            _release(o, 1, bad)
        db.session.commit()
    assert _actions("opening.refused") == ["opening.refused.not_a_custodian", "opening.refused.wrong_share",
                                           "opening.refused.wrong_share"]
    _release(o, 1)
    _release(o, 2)
    db.session.expire_all()
    assert {o.row_of(b).status for b in o.bidders} == {BidOpeningStatus.DECRYPTED}
    assert handoff_check(o.tender.id).ok


def test_nobody_sees_content_before_decryption(make_opening, api_as):
    o = make_opening(3, mode="bidder", custodians=0)
    opening.start_decryption(o.host_actor, o.tender.id)
    db.session.commit()
    _send_key(o, o.bidders[0])
    for person in (o.host, o.supervisor, o.bidders[1].person):
        state = api_as(person).get(f"/api/opening/tenders/{o.tender.id}").get_json()
        forms = {row["bidder"]: row["form"] for row in state["board"]}
        assert forms[o.bidders[0].org.name]["price"] == o.prices[o.bidders[0].org.id]
        for b in o.bidders[1:]:
            assert forms[b.org.name] is None
        text = str(state)
        for b in o.bidders[1:]:
            assert o.prices[b.org.id] not in text


def test_window_end_fails_bids_without_fallback_and_causes_need_host_and_supervisor(make_opening):
    o = make_opening(3, mode="bidder", custodians=0)
    opening.start_decryption(o.host_actor, o.tender.id)
    db.session.commit()
    for b in o.bidders[:2]:
        _send_key(o, b)
    late = o.bidders[2]
    clock.travel(timedelta(minutes=31))
    with pytest.raises(Exception, match="window"):
        opening_decrypt.submit_content_key(late.actor, o.tender.id, o.bid_of(late).public_id, o.content_key(late))
    db.session.rollback()
    opening_process.advance_all(o.host_actor)
    row = o.row_of(late)
    assert row.status == BidOpeningStatus.FAILED and row.failure_cause is None
    assert opening.get_session(o.tender.id).phase == OpeningPhase.DECRYPTED
    opening_decrypt.decide_failure(o.host_actor, o.tender.id, row.id, cause="bidder", reason="key lost",
                                   evidence="bidder's statement")
    opening_decrypt.decide_failure(o.supervisor_actor, o.tender.id, row.id, cause="network", reason="outage",
                                   evidence="ISP notice")
    db.session.commit()
    assert o.row_of(late).cause_decided_at is None
    opening_decrypt.decide_failure(o.supervisor_actor, o.tender.id, row.id, cause="bidder", reason="key lost",
                                   evidence="call log")
    db.session.commit()
    row = o.row_of(late)
    assert (row.failure_cause.value, row.legal_outcome.value) == ("bidder", "revoked")
    with pytest.raises(Forbidden):
        opening_decrypt.decide_failure(o.bidders[0].actor, o.tender.id, row.id, cause="ca", reason="x", evidence="y")


@pytest.mark.parametrize(("cause", "outcome"), [("bidder", "revoked"), ("platform", "withdrawn"), ("ca", "withdrawn"),
                                                ("network", "withdrawn"), ("unknown", "withdrawn")])
def test_legal_outcome_of_each_cause(cause, outcome):
    from bidding.opening_models import FailureCause
    assert opening_decrypt.legal_outcome(FailureCause(cause)).value == outcome


def test_double_envelope_needs_both_halves(make_opening):
    o = make_opening(3, mode="double_envelope")
    opening.start_decryption(o.host_actor, o.tender.id)
    db.session.commit()
    for b in o.bidders:
        _send_key(o, b)
    db.session.expire_all()
    assert {o.row_of(b).status for b in o.bidders} == {BidOpeningStatus.PENDING}  # the bidders' halves alone
    _release(o, 0)
    _release(o, 1)
    db.session.expire_all()
    assert {o.row_of(b).status for b in o.bidders} == {BidOpeningStatus.DECRYPTED}
    assert {o.row_of(b).method for b in o.bidders} == {DecryptMethod.BOTH}


def test_start_needs_the_host_and_happens_once(make_opening):
    o = make_opening(3, mode="bidder", custodians=0)
    with pytest.raises(Forbidden):
        opening.start_decryption(o.supervisor_actor, o.tender.id)
    db.session.rollback()
    opening.start_decryption(o.host_actor, o.tender.id)
    db.session.commit()
    with pytest.raises(Exception, match="already started"):
        opening.start_decryption(o.host_actor, o.tender.id)


@pytest.mark.parametrize(("minutes", "ok"), [(None, True), (15, True), (60, True), (14, False), (61, False),
                                             (True, False), ("30", False)])
def test_window_range(minutes, ok):
    if ok:
        assert opening.check_window(minutes) == (30 if minutes is None else minutes)
    else:
        with pytest.raises(Exception, match="decryption window"):
            opening.check_window(minutes)


@pytest.mark.parametrize("bids", [3, 6])
def test_board_query_count_does_not_grow_with_the_bids(make_opening, bids):
    """The board is sent to every hall client on each change: its queries must not be one per bid."""
    from sqlalchemy import event
    o = make_opening(bids)
    db.session.expunge_all()
    statements = []
    engine = db.engine
    listener = lambda *_args: statements.append(1)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        rows = opening.board(db.session.get(type(o.tender), o.tender.id))
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert len(rows) == bids and {r["bidder"] for r in rows} == {b.org.name for b in o.bidders}
    assert len(statements) <= 2, f"{len(statements)} statements for {bids} bids"


@pytest.mark.parametrize("language, expected", [("zh-CN", "解密开始"), ("en", "Decryption started")])
def test_announcements_are_kept_as_msgids_and_read_in_the_viewers_language(app, make_opening, language, expected):
    o = make_opening(3)
    opening.start_decryption(o.host_actor, o.tender.id)
    db.session.commit()
    from flask_babel import refresh
    with app.test_request_context("/", headers={"Accept-Language": language}):
        refresh()  # the test's app context has cached the offline locale already
        texts = [a["text"] for a in opening.announcements(o.tender.id)]
    assert any(t.startswith(expected) for t in texts), texts
