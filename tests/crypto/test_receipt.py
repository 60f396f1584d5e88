"""Canonical JSON, signed tree heads, receipts and log entries."""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from crypto import canonical, merkle, receipt
from crypto.errors import (
    DocumentFormatError,
    DocumentSignatureInvalid,
    DocumentTypeMismatch,
    InclusionProofInvalid,
    ReceiptInconsistent,
)

SHA = hashlib.sha256(b"envelope").digest()
T0 = 1_790_000_000_000


@pytest.fixture(scope="module")
def keys():
    return {"log": ec.generate_private_key(ec.SECP256R1()), "receipt": ec.generate_private_key(ec.SECP256R1()),
            "other": ec.generate_private_key(ec.SECP256R1())}


def submission(bidder="91350100M000100Y43", version=1, sha=SHA, at=T0 + 5):
    return receipt.log_entry("submission", tender="T-1", lot="1", bidder=bidder, bid_version=version,
                             envelope_sha256=sha.hex(), envelope_size=1000, at_ms=at)


@pytest.fixture()
def issued(keys):
    """A log with three entries, the tree head after the second, and a receipt for entry 1."""
    entries = [receipt.log_entry("key-event", tender="T-1", event="opening-key-created", key_id="ab" * 32, at_ms=T0),
               submission(), submission(bidder="91110000600037341L", sha=hashlib.sha256(b"2").digest(), at=T0 + 9)]
    tree = merkle.MerkleTree(entries[:2])
    head = receipt.sign_tree_head(keys["log"], log_id="ebid/T-1", tree_size=2, root_hash=tree.root(),
                                  timestamp_ms=T0 + 6)
    doc = receipt.sign_receipt(keys["receipt"], tender="T-1", lot="1", bidder="91350100M000100Y43", bid_version=1,
                               envelope_sha256=SHA, envelope_size=1000, received_at_ms=T0 + 5, log_index=1,
                               tree_head=head)
    return {"entries": entries, "tree": tree, "head": head, "receipt": doc}


def verify(keys, doc, **kwargs):
    return receipt.verify_receipt(doc, receipt_key=keys["receipt"].public_key(), log_key=keys["log"].public_key(),
                                  **kwargs)


# --- canonical JSON ----------------------------------------------------------------------------------

def test_canonical_encoding_is_deterministic_and_strict():
    value = {"b": [1, True, None, "é\n"], "a": {"z": 0, "y": -5}}
    data = canonical.encode(value)
    assert data == '{"a":{"y":-5,"z":0},"b":[1,true,null,"é\\n"]}'.encode()
    assert canonical.decode(data) == value
    for text in ('{"b":1, "a":2}', '{"b":1,"a":2}', '{"a":1,"a":1}', '{"a":1.0}', '{"a":"\\u00e9"}', '{"a":NaN}'):
        with pytest.raises(DocumentFormatError):
            canonical.decode(text.encode())
    for bad in ({"a": 1.5}, {"a": b"bytes"}, {1: "x"}, {"a": 2 ** 53}, {"ключ": 1}):
        with pytest.raises(DocumentFormatError):
            canonical.encode(bad)


# --- log entries -------------------------------------------------------------------------------------

def test_log_entries_are_canonical_and_checked():
    data = submission()
    assert data.startswith(b'{"at_ms":') and b" " not in data
    body = receipt.parse_log_entry(data)
    assert body["kind"] == "submission" and body["type"] == "ebid/log-entry/v1"
    receipt.log_entry("withdrawal", tender="T-1", lot="1", bidder="B", bid_version=2, at_ms=T0, reason="changed mind")
    receipt.log_entry("opening", tender="T-1", tree_size=9, at_ms=T0,
                      bids=[{"lot": "1", "bidder": "A", "bid_version": 1, "envelope_sha256": SHA.hex()},
                            {"lot": "1", "bidder": "B", "bid_version": 3, "envelope_sha256": SHA.hex()}])
    bad_calls = [
        lambda: receipt.log_entry("submission", tender="T-1"),  # missing fields
        lambda: receipt.log_entry("bribe", tender="T-1"),  # unknown kind
        lambda: receipt.log_entry("withdrawal", tender="T-1", lot="1", bidder="B", bid_version=-1, at_ms=T0),
        lambda: receipt.log_entry("withdrawal", tender="T-1", lot="1", bidder="B", bid_version=1, at_ms=T0, extra=1),
        lambda: receipt.log_entry("key-event", tender="T-1", event="Opening Key!", key_id="ab" * 32, at_ms=T0),
        lambda: receipt.log_entry("submission", tender="T-1", lot="1", bidder="B", bid_version=1,
                                  envelope_sha256=SHA.hex().upper(), envelope_size=1, at_ms=T0),
        lambda: receipt.log_entry("opening", tender="T-1", tree_size=9, at_ms=T0, bids=[  # not sorted
            {"lot": "1", "bidder": "B", "bid_version": 1, "envelope_sha256": SHA.hex()},
            {"lot": "1", "bidder": "A", "bid_version": 1, "envelope_sha256": SHA.hex()}]),
    ]
    for call in bad_calls:
        with pytest.raises(DocumentFormatError):
            call()
    with pytest.raises(DocumentFormatError):
        receipt.parse_log_entry(data.replace(b'"at_ms"', b'"at_ms" '))


# --- tree heads and receipts -------------------------------------------------------------------------

def test_receipt_verifies_offline_with_entry_and_proof(keys, issued):
    doc = issued["receipt"]
    wire = doc.to_json()
    rec = verify(keys, wire, envelope_sha256=SHA, envelope_size=1000, log_entry_bytes=issued["entries"][1],
                 inclusion_proof=issued["tree"].inclusion_proof(1))
    assert (rec.tender, rec.bidder, rec.log_index, rec.tree_head.tree_size) == ("T-1", "91350100M000100Y43", 1, 2)
    assert rec.tree_head.root_hash == issued["tree"].root()
    assert verify(keys, json.loads(wire)) == rec  # also from a parsed dict, or pretty-printed JSON
    assert verify(keys, json.dumps(json.loads(wire), indent=2)) == rec


def test_every_tampered_receipt_field_is_refused(keys, issued):
    wire = json.loads(issued["receipt"].to_json())
    changes = {"tender": "T-2", "lot": "2", "bidder": "X", "bid_version": 2, "envelope_sha256": "00" * 32,
               "envelope_size": 999, "received_at_ms": T0 + 4, "log_index": 0}
    for field, value in changes.items():
        forged = json.loads(json.dumps(wire))
        forged["body"][field] = value
        with pytest.raises(DocumentSignatureInvalid, match="does not verify"):
            verify(keys, forged)
    forged = json.loads(json.dumps(wire))
    forged["body"]["tree_head"]["body"]["tree_size"] = 3
    with pytest.raises(DocumentSignatureInvalid):
        verify(keys, forged)
    forged = json.loads(json.dumps(wire))
    forged["signature"] = forged["signature"][:-2] + ("00" if forged["signature"][-2:] != "00" else "01")
    with pytest.raises(DocumentSignatureInvalid):
        verify(keys, forged)


def test_wrong_keys_and_types_are_refused(keys, issued):
    with pytest.raises(DocumentSignatureInvalid, match="signed by key"):
        receipt.verify_receipt(issued["receipt"], receipt_key=keys["other"].public_key(),
                               log_key=keys["log"].public_key())
    with pytest.raises(DocumentSignatureInvalid):
        receipt.verify_receipt(issued["receipt"], receipt_key=keys["receipt"].public_key(),
                               log_key=keys["other"].public_key())
    with pytest.raises(DocumentTypeMismatch):  # a tree head is not a receipt
        verify(keys, issued["head"])
    with pytest.raises(DocumentTypeMismatch):
        receipt.verify_tree_head(issued["receipt"], keys["receipt"].public_key())
    with pytest.raises(DocumentFormatError):
        verify(keys, b'{"body":{},"key_id":"00","signature":"00"}')


def test_receipt_must_match_what_was_submitted_and_logged(keys, issued):
    with pytest.raises(ReceiptInconsistent, match="envelope hash"):
        verify(keys, issued["receipt"], envelope_sha256=bytes(32))
    with pytest.raises(ReceiptInconsistent, match="size"):
        verify(keys, issued["receipt"], envelope_size=1)
    with pytest.raises(ReceiptInconsistent, match="log entry"):
        verify(keys, issued["receipt"], log_entry_bytes=issued["entries"][2])
    with pytest.raises(InclusionProofInvalid):  # the log entry is not where the receipt says
        verify(keys, issued["receipt"], log_entry_bytes=issued["entries"][1],
               inclusion_proof=issued["tree"].inclusion_proof(0))
    dropped = merkle.MerkleTree([issued["entries"][0], issued["entries"][2]])  # a log without this bid
    head = receipt.sign_tree_head(keys["log"], log_id="ebid/T-1", tree_size=2, root_hash=dropped.root(),
                                  timestamp_ms=T0 + 6)
    doc = receipt.sign_receipt(keys["receipt"], tender="T-1", lot="1", bidder="91350100M000100Y43", bid_version=1,
                               envelope_sha256=SHA, envelope_size=1000, received_at_ms=T0 + 5, log_index=1,
                               tree_head=head)
    with pytest.raises(InclusionProofInvalid):
        verify(keys, doc, log_entry_bytes=issued["entries"][1], inclusion_proof=dropped.inclusion_proof(1))


def test_receipt_consistency_rules(keys, issued):
    def make(**overrides):
        fields = {"tender": "T-1", "lot": "1", "bidder": "B", "bid_version": 1, "envelope_sha256": SHA,
                  "envelope_size": 1, "received_at_ms": T0 + 5, "log_index": 1, "tree_head": issued["head"],
                  **overrides}
        return receipt.sign_receipt(keys["receipt"], **fields)

    with pytest.raises(ReceiptInconsistent, match="not in its tree head"):
        verify(keys, make(log_index=2))
    with pytest.raises(ReceiptInconsistent, match="older"):  # a tree head from before the bid arrived
        verify(keys, make(received_at_ms=T0 + 7))
    with pytest.raises(DocumentFormatError):
        make(bid_version="1")
