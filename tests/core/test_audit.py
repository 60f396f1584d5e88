"""The audit trail: what an event holds, secrets kept out, append-only guards, concurrent appends."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import PurePosixPath

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from core.actor import Actor
from core.audit import GENESIS, AuditEvent, Head, current_head, event_hash, hashed_fields, record, scrub
from core.audit_verify import verify_chain
from core.clock import clock
from core.db import db, install_database_guards
from core.identity.models import Role
from tests.core.audit_fixtures import ALICE, BOB, make_events, sql

PEM = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBb...\n-----END EC PRIVATE KEY-----"


def test_events_form_a_chain_from_the_genesis(app):
    assert current_head() == Head(0, GENESIS)
    first, second, third = make_events(3)
    assert [e.seq for e in (first, second, third)] == [1, 2, 3]
    assert first.prev_hash == GENESIS
    assert second.prev_hash == first.hash and third.prev_hash == second.hash
    assert len({first.hash, second.hash, third.hash}) == 3
    assert current_head() == Head(3, third.hash)
    result = verify_chain()
    assert result.ok and result.count == 3 and result.head == Head(3, third.hash)


def test_event_records_who_when_where_what(app):
    clock.freeze(datetime(2026, 3, 2, 1, 30, tzinfo=UTC))
    ev = record(ALICE, "bid.submitted", "bid", 42, {"lot": 1, "size": 1024})
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(AuditEvent, ev.id)
    assert (stored.actor_person_id, stored.actor_name, stored.actor_role) == (7, "Alice Zhang", "agency")
    assert (stored.organisation_id, stored.organisation_uscc) == (3, "91370200MA3C4XYZ0K")
    assert stored.source == "203.0.113.9"
    assert stored.at == datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
    assert (stored.object_type, stored.object_id, stored.action) == ("bid", "42", "bid.submitted")
    assert stored.summary == {"lot": 1, "size": 1024}
    # what was hashed at write time is exactly what reads back from the database
    assert event_hash(stored.prev_hash, hashed_fields(stored)) == stored.hash


def test_system_actor_and_missing_object_id(app):
    ev = record(Actor.system("scheduler"), "tender.opened", "tender")
    db.session.commit()
    assert (ev.actor_person_id, ev.actor_name, ev.actor_role, ev.source) == (None, "ebid", "system", "scheduler")
    assert ev.object_id is None and ev.summary == {}
    assert verify_chain().ok


@pytest.mark.parametrize("given, expected", [
    ({"password": "hunter2"}, {"password": "[redacted]"}),
    ({"user": {"Passphrase": "x", "name": "n"}}, {"user": {"Passphrase": "[redacted]", "name": "n"}}),
    ({"keys": [{"private_key": PEM}, {"public_key": "pub"}]},
     {"keys": [{"private_key": "[redacted]"}, {"public_key": "pub"}]}),
    ({"bidderPrivateKey": "abc"}, {"bidderPrivateKey": "[redacted]"}),
    ({"reset-token": "t", "api_key": "k", "otp": "123456"},
     {"reset-token": "[redacted]", "api_key": "[redacted]", "otp": "[redacted]"}),
    ({"custodian": {"share": "01ab", "shares": [["1", "aa"]], "index": 2}},
     {"custodian": {"share": "[redacted]", "shares": "[redacted]", "index": 2}}),
    ({"note": PEM}, {"note": "[redacted]"}),
    ({"note": "see attached " + PEM}, {"note": "[redacted]"}),
    ({"blob": b"\x00\x01\x02"}, {"blob": "[redacted] (3 bytes)"}),
    ({"tuple": (1, "a")}, {"tuple": [1, "a"]}),
    ({"amount": Decimal("12.30")}, {"amount": "12.30"}),
    ({1: "one"}, {"1": "one"}),
    ({"roles": {"b", "a"}}, {"roles": ["a", "b"]}),
    ({"role": Role.SUPERVISOR}, {"role": "supervisor"}),
    ({"at": datetime(2026, 3, 2, 8, 0, tzinfo=UTC)}, {"at": "2026-03-02T08:00:00+00:00"}),
    ({"path": PurePosixPath("/data/bids/7")}, {"path": "/data/bids/7"}),
    ({"plain": "public key fingerprint", "count": 3, "ok": True, "none": None},
     {"plain": "public key fingerprint", "count": 3, "ok": True, "none": None}),
])
def test_scrub(given, expected):
    assert scrub(given) == expected


def test_record_never_stores_secrets_whatever_the_caller_passes(app):
    ev = record(BOB, "custodian.share_submitted", "tender", 9, {
        "custodian": {"name": "C1", "share": "7f3a9c", "passphrase": "open sesame"},
        "keys": {"opening_private_key": PEM}, "note": PEM, "dek": b"\x11" * 32,
        "authorization": "Bearer ebid_abcdef", "shares_received": 2,
    })
    db.session.commit()
    row = db.session.execute(text("SELECT summary FROM audit_events WHERE id = :id"), {"id": ev.id}).scalar_one()
    stored = row if isinstance(row, str) else json.dumps(row)
    for secret in ("7f3a9c", "open sesame", "PRIVATE KEY", "MHcCAQEEIBb", "ebid_abcdef", "\\u0011", "\x11"):
        assert secret not in stored
    assert json.loads(stored)["custodian"]["name"] == "C1"
    assert verify_chain().ok


def test_triggers_refuse_update_and_delete(app):
    make_events(2)
    for statement in ("UPDATE audit_events SET summary = '{}' WHERE seq = 1",
                      "UPDATE audit_events SET actor_name = 'Mallory'",
                      "DELETE FROM audit_events WHERE seq = 2",
                      "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"):
            sql(statement)
    assert [e.seq for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq))] == [1, 2]
    assert verify_chain().ok


def test_orm_changes_are_refused_too(app):
    ev = make_events(1)[0]
    ev.actor_name = "Mallory"
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.commit()
    db.session.rollback()
    db.session.delete(db.session.get(AuditEvent, ev.id))
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.commit()
    db.session.rollback()
    assert verify_chain().ok and verify_chain().count == 1


def test_guard_installation_is_idempotent(app):
    install_database_guards(db.engine)
    install_database_guards(db.engine)
    make_events(1)
    with pytest.raises(DBAPIError, match="append-only"):
        sql("DELETE FROM audit_events")


@pytest.mark.postgres
def test_truncate_stays_possible_on_postgres(app):
    """TRUNCATE is a privileged maintenance operation (and the test teardown); row triggers allow it."""
    make_events(2)
    sql("TRUNCATE audit_events")
    assert current_head() == Head(0, GENESIS)


def test_concurrent_appends_build_one_unbroken_chain(app):
    threads_count, per_thread = 8, 15
    errors: list[BaseException] = []
    start = threading.Barrier(threads_count)

    def append(worker: int) -> None:
        try:
            with app.app_context():
                start.wait()
                for i in range(per_thread):
                    record(Actor(person_id=worker, name=f"worker {worker}"), "load.tested", "test", i,
                           {"worker": worker, "i": i})
                    db.session.commit()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    result = verify_chain()
    assert result.ok, result.broken
    assert result.count == threads_count * per_thread
    assert result.head.seq == threads_count * per_thread
    summaries = db.session.scalars(select(AuditEvent.summary)).all()
    assert sorted((s["worker"], s["i"]) for s in summaries) == [
        (w, i) for w in range(threads_count) for i in range(per_thread)]


def test_appends_inside_larger_transactions_stay_ordered(app, create_org):
    """Events recorded after other writes in the same transaction still chain in commit order."""
    create_org()
    record(ALICE, "org.created", "organisation", 1)
    record(ALICE, "org.checked", "organisation", 1)
    db.session.commit()
    create_org()
    record(BOB, "org.created", "organisation", 2)
    db.session.rollback()  # a rolled-back append leaves no hole
    record(BOB, "org.created", "organisation", 3)
    db.session.commit()
    result = verify_chain()
    assert result.ok and result.count == 3
    assert [e.object_id for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq))] == ["1", "1", "3"]


@pytest.mark.parametrize("value, expected", [
    ("12:" + "ab" * 32, Head(12, "ab" * 32)),
    (" 0:" + "0" * 64 + "\n", Head(0, GENESIS)),
    ("7:" + "AB" * 32, Head(7, "ab" * 32)),
])
def test_head_parse(value, expected):
    assert Head.parse(value) == expected
    assert Head.parse(str(expected)) == expected


@pytest.mark.parametrize("value", ["", "12", "12:", ":" + "a" * 64, "x:" + "a" * 64, "-1:" + "a" * 64,
                                   "3:" + "a" * 63, "3:" + "g" * 64])
def test_head_parse_refuses_malformed_values(value):
    with pytest.raises(ValueError, match="SEQ:HASH"):
        Head.parse(value)

