"""The signed message protocol (pure): canonical JSON, signatures, skew, nonces, structure."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from guarantees import protocol as p

T0 = datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)
NONCE = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def key():
    return p.generate_private_key()


def test_canonical_bytes_are_sorted_compact_utf8_without_signature():
    msg = {"version": 1, "type": "Result", "sender": "银行", "order_no": "O1", "nonce": NONCE,
           "timestamp": "2026-03-01T08:00:00Z", "data": {"b": "2", "a": {"y": 1, "x": "元"}}, "signature": "zz"}
    assert p.canonical_bytes(msg) == (
        '{"data":{"a":{"x":"元","y":1},"b":"2"},"nonce":"0123456789abcdef0123456789abcdef","order_no":"O1",'
        '"sender":"银行","timestamp":"2026-03-01T08:00:00Z","type":"Result","version":1}').encode()


def test_sign_then_verify_roundtrip(key):
    msg = p.sign_message(key, p.ORDER_APPLY, "ebid-platform", "G1", {"amount": Decimal("20000.00"), "at": T0},
                         now=T0, nonce=NONCE)
    assert msg["timestamp"] == "2026-03-01T08:00:00Z" and msg["nonce"] == NONCE
    assert msg["data"] == {"amount": "20000.00", "at": "2026-03-01T08:00:00Z"}
    der = base64.b64decode(msg["signature"])
    key.public_key().verify(der, p.canonical_bytes(msg), ec.ECDSA(hashes.SHA256()))  # plain DER ECDSA
    assert p.verify_message(json.loads(json.dumps(msg)), key.public_key(), now=T0) == msg


def test_fresh_nonce_each_time(key):
    a = p.sign_message(key, p.RESULT, "x", "O", {}, now=T0)
    b = p.sign_message(key, p.RESULT, "x", "O", {}, now=T0)
    assert a["nonce"] != b["nonce"] and len(a["nonce"]) == 32 and a["nonce"] == a["nonce"].lower()


def test_forged_signature_and_tampering_refused(key):
    other = p.generate_private_key()
    forged = p.sign_message(other, p.RESULT, "BANK1", "O", {"status": "approved"}, now=T0)
    with pytest.raises(p.BadSignature):
        p.verify_message(forged, key.public_key(), now=T0)
    msg = p.sign_message(key, p.RESULT, "BANK1", "O", {"status": "rejected"}, now=T0)
    tampered = {**msg, "data": {"status": "approved"}}
    with pytest.raises(p.BadSignature):
        p.verify_message(tampered, key.public_key(), now=T0)
    with pytest.raises(p.BadSignature):
        p.verify_message({**msg, "signature": "not base64!"}, key.public_key(), now=T0)


@pytest.mark.parametrize(("offset", "ok"), [(0, True), (300, True), (-300, True), (301, False), (-301, False),
                                            (3600, False)])
def test_timestamp_skew(key, offset, ok):
    msg = p.sign_message(key, p.RESULT, "BANK1", "O", {}, now=T0)
    receiver_now = T0 + timedelta(seconds=offset)
    if ok:
        p.verify_message(msg, key.public_key(), now=receiver_now)
    else:
        with pytest.raises(p.StaleTimestamp) as refused:
            p.verify_message(msg, key.public_key(), now=receiver_now)
        assert refused.value.status == 401


@pytest.mark.parametrize(("change", "problem"), [
    (lambda m: m.pop("nonce"), "missing"),
    (lambda m: m.update(nonce="ABCDEF"), "nonce"),
    (lambda m: m.update(version=2), "version"),
    (lambda m: m.update(type="Steal"), "unknown type"),
    (lambda m: m.update(timestamp="2026-03-01 08:00:00"), "timestamp"),
    (lambda m: m.update(data={"amount": 1.5}), "decimal strings"),
    (lambda m: m.update(extra=1), "unexpected"),
])
def test_malformed_messages(key, change, problem):
    msg = p.sign_message(key, p.RESULT, "BANK1", "O", {}, now=T0)
    change(msg)
    with pytest.raises(p.MalformedMessage) as refused:
        p.verify_message(msg, key.public_key(), now=T0)
    assert problem in refused.value.to_dict()["message"]


def test_signing_refuses_floats_and_unknown_types(key):
    with pytest.raises(ValueError, match="floats"):
        p.sign_message(key, p.RESULT, "x", "O", {"amount": 1.5}, now=T0)
    with pytest.raises(ValueError):
        p.sign_message(key, "Steal", "x", "O", {}, now=T0)
    with pytest.raises(ValueError):
        p.sign_message(ec.generate_private_key(ec.SECP384R1()), p.RESULT, "x", "O", {}, now=T0)


def test_open_message_runs_every_check_in_order(key):
    store = p.MemoryNonceStore()
    keys = {"BANK1": key.public_key()}
    known = {("BANK1", "O1")}

    def open_(msg, at=T0):
        return p.open_message(json.dumps(msg).encode(), key_for_sender=keys.get, nonces=store, now=at,
                              order_known=lambda s, o: (s, o) in known)

    good = p.sign_message(key, p.RESULT, "BANK1", "O1", {"status": "approved"}, now=T0)
    received = open_(good)
    assert (received.type, received.sender, received.order_no, received.data) == (
        p.RESULT, "BANK1", "O1", {"status": "approved"})
    with pytest.raises(p.ReplayedNonce) as replay:
        open_(good)
    assert replay.value.status == 409
    with pytest.raises(p.UnknownSender):
        open_(p.sign_message(key, p.RESULT, "BANK2", "O1", {}, now=T0))
    with pytest.raises(p.UnknownOrder):
        open_(p.sign_message(key, p.RESULT, "BANK1", "O2", {}, now=T0))
    # OrderApply creates the order: no order check
    open_(p.sign_message(key, p.ORDER_APPLY, "BANK1", "NEW", {}, now=T0))
    with pytest.raises(p.MalformedMessage):
        p.open_message(b"not json", key_for_sender=keys.get, nonces=store, now=T0)


def test_refused_message_does_not_burn_its_nonce(key):
    store = p.MemoryNonceStore()
    msg = p.sign_message(key, p.RESULT, "BANK1", "O1", {}, now=T0)
    with pytest.raises(p.StaleTimestamp):
        p.open_message(msg, key_for_sender=lambda s: key.public_key(), nonces=store, now=T0 + timedelta(hours=1))
    assert store.remember("BANK1", msg["nonce"], T0)


def test_memory_nonce_store_keeps_nonces_600_seconds():
    store = p.MemoryNonceStore()
    assert store.remember("A", NONCE, T0)
    assert not store.remember("A", NONCE, T0 + timedelta(seconds=600))
    assert store.remember("B", NONCE, T0)  # per sender
    assert store.remember("A", NONCE, T0 + timedelta(seconds=601))  # forgotten after the retention
    with pytest.raises(ValueError):
        p.MemoryNonceStore(retention=599)


def test_public_key_from_certificate_or_key_pem(key):
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert p.public_key_from_pem(pem).public_numbers() == key.public_key().public_numbers()


def test_verification_codes():
    code = p.generate_verification_code()
    assert p.is_verification_code(code) and len(code) == 10
    assert not set(code) & set("01IOL")
    assert not p.is_verification_code("ABCDEFGH10")
