"""Tampering with what the server stores, as a storage or database administrator could: always detected.

The log's tables refuse UPDATE and DELETE in the database itself; the tests drop those guards first
(as a DBA could) and then show that ``verify_tender`` names what was changed.
"""

from __future__ import annotations

import json
import os

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from bidding import translog
from bidding.sealed_models import APPEND_ONLY, Bid, LogEntry, TenderLog, TreeHead
from bidding.sealed_verify import verify_tender
from bidding.tasks import close_due_tenders
from core.clock import clock
from core.db import db, install_database_guards
from core.storage import default_store
from crypto import merkle
from crypto.errors import DocumentSignatureInvalid, ReceiptInconsistent
from crypto.header import read_header
from crypto.receipt import log_entry, verify_receipt
from tests.bidding.sealed_support import (  # noqa: F401  (kit_fixture is the kit fixture)
    SEGMENT,
    kit_fixture,
    lot_of,
    past_deadline,
    submit,
    transparency_keys,
)


def sql(statement: str, **params) -> None:
    db.session.commit()
    with db.engine.begin() as conn:
        conn.execute(text(statement), params)


@pytest.fixture
def unguarded(app):
    """Drop the append-only triggers of the log tables for one test, and put them back afterwards."""
    for table in APPEND_ONLY:
        if db.engine.dialect.name == "postgresql":
            sql(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        else:
            sql(f"DROP TRIGGER IF EXISTS {table}_no_update")
            sql(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    yield
    db.session.rollback()
    install_database_guards(db.engine)


@pytest.fixture
def stored(kit):
    """A tender with two accepted bids (the second bidder replaced its first envelope)."""
    tender = kit.tender(custodians=2)
    lot = lot_of(tender)
    a, b = kit.bidder(), kit.bidder()
    responses = [submit(a.client, tender, lot, kit.seal(tender, lot, a)),
                 submit(b.client, tender, lot, kit.seal(tender, lot, b)),
                 submit(b.client, tender, lot, kit.seal(tender, lot, b, version=2))]
    assert [r.status_code for r in responses] == [201, 201, 201]
    assert verify_tender(tender).ok, verify_tender(tender).problems
    return tender, [r.get_json() for r in responses]


def problems(tender) -> str:
    db.session.expire_all()
    report = verify_tender(tender)
    assert not report.ok
    return "\n".join(str(p) for p in report.problems)


def _envelope_path(data):
    return default_store().path_for(data["bid"]["envelope_sha256"])


def flip(path, at):
    raw = bytearray(path.read_bytes())
    raw[at] ^= 0x40
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(("change", "expected"), [
    (lambda p: flip(p, p.stat().st_size // 2), "does not verify"),
    (lambda p: flip(p, 20), "envelope"),  # inside the header
    (lambda p: os.truncate(p, p.stat().st_size - 70), "envelope"),
    (lambda p: p.write_bytes(p.read_bytes() + b"\x00"), "envelope"),
], ids=["flipped", "header", "truncated", "appended"])
def test_envelope_changes_are_named(stored, change, expected):
    tender, responses = stored
    path = _envelope_path(responses[0])
    change(path)
    found = problems(tender)
    assert f"bid {responses[0]['bid']['id']}" in found and expected in found


def test_reordered_envelope_segments_are_named(stored):
    tender, responses = stored
    path = _envelope_path(responses[1])
    raw = path.read_bytes()
    with path.open("rb") as fh:
        start = read_header(fh).length
    record = SEGMENT + 16
    first, second = raw[start:start + record], raw[start + record:start + 2 * record]
    path.write_bytes(raw[:start] + second + first + raw[start + 2 * record:])
    assert "does not verify" in problems(tender)


def test_an_edited_receipt_is_named_and_fails_offline(stored, kit):
    tender, responses = stored
    bid = db.session.scalar(select(Bid).where(Bid.public_id == responses[0]["bid"]["id"]))
    document = json.loads(bid.receipt)
    document["body"]["received_at_ms"] -= 60_000  # backdated by a minute
    bid.receipt = json.dumps(document)
    db.session.commit()
    assert "receipt" in problems(tender) and "altered" in problems(tender)
    k = transparency_keys(kit.api_as(kit.create_person()))
    with pytest.raises(DocumentSignatureInvalid):
        verify_receipt(document, receipt_key=k["receipt"], log_key=k["log"])


def test_a_receipt_for_another_envelope_is_inconsistent(stored, kit):
    _tender, responses = stored
    k = transparency_keys(kit.api_as(kit.create_person()))
    with pytest.raises(ReceiptInconsistent):
        verify_receipt(responses[0]["receipt"], receipt_key=k["receipt"], log_key=k["log"],
                       envelope_sha256=bytes.fromhex(responses[1]["bid"]["envelope_sha256"]))


def test_the_log_tables_refuse_updates_and_deletes(stored):
    tender, _ = stored
    with pytest.raises(DBAPIError):
        sql("UPDATE log_entries SET kind = 'x' WHERE tender_id = :t", t=tender.id)
    with pytest.raises(DBAPIError):
        sql("DELETE FROM tree_heads WHERE tender_id = :t", t=tender.id)


def _entry(tender, index) -> LogEntry:
    return db.session.scalar(select(LogEntry).where(LogEntry.tender_id == tender.id, LogEntry.index == index))


def test_a_flipped_log_entry_byte_is_named(stored, unguarded):
    tender, responses = stored
    row = _entry(tender, responses[0]["bid"]["log_index"])
    raw = bytearray(row.entry)
    raw[raw.index(b'"envelope_size":') + 16] ^= 0x01  # still canonical JSON, another size
    row.entry = bytes(raw)
    db.session.commit()
    found = problems(tender)
    assert f"log entry {responses[0]['bid']['log_index']}" in found and "bytes changed" in found


def test_a_rewritten_entry_with_a_matching_leaf_hash_breaks_the_signed_heads(stored, unguarded):
    tender, responses = stored
    row = _entry(tender, responses[0]["bid"]["log_index"])
    row.entry = row.entry.replace(b'"bid_version":1', b'"bid_version":7')
    row.leaf_hash = merkle.leaf_hash(row.entry).hex()
    db.session.commit()
    assert "no longer produce the signed root" in problems(tender)


def test_a_deleted_entry_is_named(stored, unguarded):
    tender, responses = stored
    db.session.delete(_entry(tender, responses[1]["bid"]["log_index"]))
    db.session.commit()
    found = problems(tender)
    assert "missing: an entry was deleted" in found and "truncated" in found


def test_reordered_entries_are_named(stored, unguarded):
    tender, responses = stored
    a, b = (_entry(tender, r["bid"]["log_index"]) for r in responses[:2])
    ia, ib = a.index, b.index
    a.index = -1
    db.session.flush()
    b.index = ia
    db.session.flush()
    a.index = ib
    db.session.commit()
    assert "no longer produce the signed root" in problems(tender)


def test_an_appended_entry_is_named(stored):
    tender, _ = stored
    log = db.session.get(TenderLog, tender.id)
    forged = log_entry("withdrawal", tender=tender.code, lot="L1", bidder="f" * 64, bid_version=1, at_ms=1)
    db.session.add(LogEntry(tender_id=tender.id, index=log.size, kind="withdrawal", entry=forged,
                            leaf_hash=merkle.leaf_hash(forged).hex()))
    log.size += 1
    db.session.commit()
    assert "not covered by any signed tree head" in problems(tender)


def test_a_forged_tree_head_is_named(stored, unguarded):
    tender, _ = stored
    head = translog.latest_head(tender.id)
    document = json.loads(head.document)
    document["body"]["timestamp_ms"] += 1
    head.document = json.dumps(document)
    db.session.commit()
    assert f"tree head of size {head.tree_size}" in problems(tender)


def test_the_opened_set_must_equal_the_logged_set(stored, kit):
    tender, responses = stored
    third = kit.bidder()
    submit(third.client, tender, lot_of(tender), kit.seal(tender, lot_of(tender), third))
    past_deadline(tender, clock)
    close_due_tenders()
    db.session.expire_all()
    assert verify_tender(tender).ok
    bid = db.session.scalar(select(Bid).where(Bid.public_id == responses[0]["bid"]["id"]))
    bid.is_current = False  # a bid silently dropped after the deadline
    db.session.commit()
    assert "opening entry" in problems(tender)


def test_the_cli_reports_problems(stored, app):
    tender, responses = stored
    flip(_envelope_path(responses[2]), 100)
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["bids", "verify", tender.code])
    assert result.exit_code == 1 and "PROBLEM bid" in result.output and "1 problem(s)" in result.output
    assert db.session.scalar(select(TreeHead.id).limit(1)) is not None
