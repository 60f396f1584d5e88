"""Signed receipts, signed tree heads and transparency-log entries.

Every document is a JSON object with a ``type`` field, encoded as canonical JSON
(:mod:`crypto.canonical`). A signed document is::

    {"body": <document>, "key_id": "<hex SHA-256 of the signer's SPKI DER>", "signature": "<hex r||s>"}

where the signature is ECDSA P-256 with SHA-256 over the canonical bytes of ``body`` (raw ``r || s``,
64 bytes, low s). The ``type`` inside the body separates the domains (a tree head can never pass as
a receipt), and the canonical form makes one document one byte string.

Hashes are lowercase hex (64 characters), times are integer milliseconds since the Unix epoch (UTC).
A log entry's canonical bytes are the Merkle leaf input: leaf hash = SHA-256(0x00 || entry bytes).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from crypto import canonical, merkle
from crypto.errors import (
    DocumentFormatError,
    DocumentSignatureInvalid,
    DocumentTypeMismatch,
    ReceiptInconsistent,
)
from crypto.suites import SUITE_P256, ecdsa_sign_raw, ecdsa_verify_raw

RECEIPT_TYPE = "ebid/receipt/v1"
TREE_HEAD_TYPE = "ebid/tree-head/v1"
LOG_ENTRY_TYPE = "ebid/log-entry/v1"
_HEX32 = re.compile(r"^[0-9a-f]{64}$")
_EVENT = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
MAX_TEXT = 256

# field name -> kind: "text" (non-empty string), "int" (>= 0), "hex32", "event", "bids", "signed"
_BID = {"lot": "text", "bidder": "text", "bid_version": "int", "envelope_sha256": "hex32"}
_SUBMISSION = {"tender": "text", **_BID, "envelope_size": "int", "at_ms": "int"}
LOG_ENTRY_KINDS: dict[str, tuple[dict[str, str], dict[str, str]]] = {  # kind -> (required, optional)
    "submission": (_SUBMISSION, {}),
    "replacement": ({**_SUBMISSION, "replaces_sha256": "hex32"}, {}),
    "withdrawal": ({"tender": "text", "lot": "text", "bidder": "text", "bid_version": "int", "at_ms": "int"},
                   {"reason": "text"}),
    "key-event": ({"tender": "text", "event": "event", "key_id": "hex32", "at_ms": "int"},
                  {"custodian": "text", "share_index": "int", "detail": "text"}),
    "opening": ({"tender": "text", "tree_size": "int", "bids": "bids", "at_ms": "int"}, {}),
    # a public random draw at the opening: "draw-commit" logs SHA-256(seed) before, "draw-reveal" the seed after
    "draw": ({"tender": "text", "event": "event", "name": "text", "commitment": "hex32", "at_ms": "int"},
             {"choices": "text", "seed": "hex32", "result": "text"}),
    # an evaluation committee event (评标委员会): sheet submitted, chair vote, clarification, dispute, summary...
    "committee": ({"tender": "text", "event": "event", "at_ms": "int"},
                  {"member": "text", "bid": "text", "criterion": "text", "detail": "text", "sha256": "hex32"}),
    # after the evaluation (定标): publicity, objections and answers, 评定分离 choices and lots, awards
    "award": ({"tender": "text", "event": "event", "at_ms": "int"},
              {"lot": "text", "bid": "text", "amount": "text", "pick": "text", "days": "text", "ends_ms": "text",
               "objection": "text", "choices": "text", "result": "text", "commitment": "hex32", "seed": "hex32",
               "sha256": "hex32"}),
    # an expert draw round (评标专家抽取): the commitment and frozen candidate list before, the seed after
    "draw.commit": ({"tender": "text", "round": "int", "commitment": "hex32", "candidates_sha256": "hex32",
                     "wanted": "text", "at_ms": "int"}, {"purpose": "text"}),
    "draw.reveal": ({"tender": "text", "round": "int", "commitment": "hex32", "seed": "hex32",
                     "result_sha256": "hex32", "at_ms": "int"}, {"beacon": "hex32"}),
}
_TREE_HEAD = {"log_id": "text", "tree_size": "int", "root_hash": "hex32", "timestamp_ms": "int"}
_RECEIPT = {"tender": "text", "lot": "text", "bidder": "text", "bid_version": "int", "envelope_sha256": "hex32",
            "envelope_size": "int", "received_at_ms": "int", "log_index": "int", "tree_head": "signed"}


def _field(name: str, kind: str, value: Any) -> None:
    ok = {
        "text": lambda v: isinstance(v, str) and 0 < len(v) <= MAX_TEXT,
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "hex32": lambda v: isinstance(v, str) and bool(_HEX32.match(v)),
        "event": lambda v: isinstance(v, str) and bool(_EVENT.match(v)),
        "signed": lambda v: isinstance(v, dict) and set(v) == {"body", "key_id", "signature"},
        "bids": _bids_ok,
    }[kind](value)
    if not ok:
        raise DocumentFormatError(f"Field {name!r} must be {kind.replace('hex32', '64 lowercase hex digits')}, "
                                  f"not {value!r:.80}")


def _bids_ok(value: Any) -> bool:
    if not isinstance(value, list):
        return False
    for bid in value:
        if not isinstance(bid, dict) or set(bid) != set(_BID):
            return False
        for name, kind in _BID.items():
            _field(f"bids[].{name}", kind, bid[name])
    keys = [(b["lot"], b["bidder"], b["bid_version"]) for b in value]
    return keys == sorted(set(keys))  # canonical: sorted, no duplicates


def _check_shape(body: Mapping[str, Any], expected_type: str, required: dict[str, str],
                 optional: Mapping[str, str] | None = None) -> None:
    if body.get("type") != expected_type:
        raise DocumentTypeMismatch(f"Expected a {expected_type} document, got {body.get('type')!r}")
    optional = optional or {}
    unknown = set(body) - set(required) - set(optional) - {"type", "kind"}
    missing = set(required) - set(body)
    if unknown or missing:
        raise DocumentFormatError(f"{expected_type}: missing {sorted(missing)}, unknown {sorted(unknown)}")
    for name, kind in {**required, **optional}.items():
        if name in body:
            _field(name, kind, body[name])


# --- signed documents --------------------------------------------------------------------------------

@dataclass(frozen=True)
class SignedDocument:
    body: dict[str, Any]
    key_id: bytes
    signature: bytes

    def body_bytes(self) -> bytes:
        return canonical.encode(self.body)

    def as_dict(self) -> dict[str, Any]:
        return {"body": self.body, "key_id": self.key_id.hex(), "signature": self.signature.hex()}

    def to_json(self) -> bytes:
        """The canonical JSON of the signed document (for storage, transport and hashing)."""
        return canonical.encode(self.as_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignedDocument:
        if not isinstance(data, Mapping) or set(data) != {"body", "key_id", "signature"} \
                or not isinstance(data["body"], dict):
            raise DocumentFormatError("A signed document is an object with exactly body, key_id and signature")
        try:
            key_id, signature = bytes.fromhex(data["key_id"]), bytes.fromhex(data["signature"])
        except (TypeError, ValueError) as exc:
            raise DocumentFormatError("key_id and signature are hex strings") from exc
        if len(key_id) != 32 or len(signature) != 64:
            raise DocumentFormatError("key_id has 32 bytes and signature 64 bytes (r || s)")
        canonical.encode(data["body"])  # refuses floats, non-ASCII keys, huge integers
        return cls(dict(data["body"]), key_id, signature)

    @classmethod
    def from_json(cls, data: bytes | str) -> SignedDocument:
        """Parse a signed document from JSON (any spacing; floats and duplicate keys are refused)."""
        try:
            value = json.loads(data, parse_float=canonical._no_float, parse_constant=canonical._no_constant,
                               object_pairs_hook=canonical._unique_keys)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DocumentFormatError(f"Not a JSON document: {exc}") from exc
        return cls.from_dict(value)


def sign_document(body: Mapping[str, Any], private_key: ec.EllipticCurvePrivateKey) -> SignedDocument:
    """Sign the canonical bytes of ``body`` (which must carry a ``type``)."""
    SUITE_P256.check_private_key(private_key)
    if not isinstance(body.get("type"), str):
        raise DocumentFormatError("A signed document's body needs a type")
    data = canonical.encode(dict(body))
    signature = ecdsa_sign_raw(private_key, hashlib.sha256(data).digest())
    return SignedDocument(dict(body), SUITE_P256.key_id(private_key.public_key()), signature)


def verify_document(document: SignedDocument | Mapping[str, Any] | bytes | str,
                    public_key: ec.EllipticCurvePublicKey, *, expected_type: str) -> dict[str, Any]:
    """Check type and signature; return the body."""
    doc = _as_document(document)
    if doc.body.get("type") != expected_type:
        raise DocumentTypeMismatch(f"Expected a {expected_type} document, got {doc.body.get('type')!r}")
    key_id = SUITE_P256.key_id(public_key)
    if doc.key_id != key_id:
        raise DocumentSignatureInvalid(f"The {expected_type} document was signed by key {doc.key_id[:8].hex()}, "
                                       f"not by the expected key {key_id[:8].hex()}")
    if not ecdsa_verify_raw(public_key, hashlib.sha256(doc.body_bytes()).digest(), doc.signature):
        raise DocumentSignatureInvalid(f"The signature of the {expected_type} document does not verify: it was "
                                       f"altered")
    return doc.body


def _as_document(document: SignedDocument | Mapping[str, Any] | bytes | str) -> SignedDocument:
    if isinstance(document, SignedDocument):
        return document
    if isinstance(document, (bytes, bytearray, str)):
        return SignedDocument.from_json(bytes(document) if not isinstance(document, str) else document)
    return SignedDocument.from_dict(document)


# --- log entries -------------------------------------------------------------------------------------

def log_entry(kind: str, **fields: Any) -> bytes:
    """The canonical bytes of a log entry (the Merkle leaf input); fields are checked per kind."""
    if kind not in LOG_ENTRY_KINDS:
        raise DocumentFormatError(f"Unknown log entry kind {kind!r}; known: {', '.join(LOG_ENTRY_KINDS)}")
    body = {"type": LOG_ENTRY_TYPE, "kind": kind, **fields}
    required, optional = LOG_ENTRY_KINDS[kind]
    _check_shape(body, LOG_ENTRY_TYPE, required, optional)
    return canonical.encode(body)


def parse_log_entry(data: bytes) -> dict[str, Any]:
    """Decode and check a log entry's canonical bytes."""
    body = canonical.decode(data)
    if not isinstance(body, dict) or body.get("kind") not in LOG_ENTRY_KINDS:
        raise DocumentFormatError("Not a log entry of a known kind")
    required, optional = LOG_ENTRY_KINDS[body["kind"]]
    _check_shape(body, LOG_ENTRY_TYPE, required, optional)
    return body


# --- tree heads --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TreeHead:
    log_id: str
    tree_size: int
    root_hash: bytes
    timestamp_ms: int


def sign_tree_head(private_key: ec.EllipticCurvePrivateKey, *, log_id: str, tree_size: int, root_hash: bytes,
                   timestamp_ms: int) -> SignedDocument:
    body = {"type": TREE_HEAD_TYPE, "log_id": log_id, "tree_size": tree_size, "root_hash": bytes(root_hash).hex(),
            "timestamp_ms": timestamp_ms}
    _check_shape(body, TREE_HEAD_TYPE, _TREE_HEAD)
    return sign_document(body, private_key)


def verify_tree_head(document: SignedDocument | Mapping[str, Any] | bytes | str,
                     public_key: ec.EllipticCurvePublicKey) -> TreeHead:
    body = verify_document(document, public_key, expected_type=TREE_HEAD_TYPE)
    _check_shape(body, TREE_HEAD_TYPE, _TREE_HEAD)
    return TreeHead(body["log_id"], body["tree_size"], bytes.fromhex(body["root_hash"]), body["timestamp_ms"])


# --- receipts ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Receipt:
    tender: str
    lot: str
    bidder: str
    bid_version: int
    envelope_sha256: bytes
    envelope_size: int
    received_at_ms: int
    log_index: int
    tree_head: TreeHead


def sign_receipt(private_key: ec.EllipticCurvePrivateKey, *, tender: str, lot: str, bidder: str, bid_version: int,
                 envelope_sha256: bytes, envelope_size: int, received_at_ms: int, log_index: int,
                 tree_head: SignedDocument) -> SignedDocument:
    body = {"type": RECEIPT_TYPE, "tender": tender, "lot": lot, "bidder": bidder, "bid_version": bid_version,
            "envelope_sha256": bytes(envelope_sha256).hex(), "envelope_size": envelope_size,
            "received_at_ms": received_at_ms, "log_index": log_index, "tree_head": tree_head.as_dict()}
    _check_shape(body, RECEIPT_TYPE, _RECEIPT)
    return sign_document(body, private_key)


def verify_receipt(document: SignedDocument | Mapping[str, Any] | bytes | str, *,
                   receipt_key: ec.EllipticCurvePublicKey, log_key: ec.EllipticCurvePublicKey,
                   envelope_sha256: bytes | None = None, envelope_size: int | None = None,
                   log_entry_bytes: bytes | None = None, inclusion_proof: list[bytes] | None = None) -> Receipt:
    """Check a receipt offline: its signature, its tree head's signature, and whatever else is given.

    With ``envelope_sha256``/``envelope_size`` (what the bidder sent) the receipt must name them; with
    the log entry and its inclusion proof the entry must match the receipt and be leaf
    ``log_index`` of the signed tree head.
    """
    body = verify_document(document, receipt_key, expected_type=RECEIPT_TYPE)
    _check_shape(body, RECEIPT_TYPE, _RECEIPT)
    head = verify_tree_head(body["tree_head"], log_key)
    receipt = Receipt(body["tender"], body["lot"], body["bidder"], body["bid_version"],
                      bytes.fromhex(body["envelope_sha256"]), body["envelope_size"], body["received_at_ms"],
                      body["log_index"], head)
    if receipt.log_index >= head.tree_size:
        raise ReceiptInconsistent(f"The receipt's log index {receipt.log_index} is not in its tree head of size "
                                  f"{head.tree_size}")
    if head.timestamp_ms < receipt.received_at_ms:
        raise ReceiptInconsistent("The receipt's tree head is older than the time the bid was received")
    if envelope_sha256 is not None and bytes(envelope_sha256) != receipt.envelope_sha256:
        raise ReceiptInconsistent("The receipt names another envelope hash than the one submitted")
    if envelope_size is not None and envelope_size != receipt.envelope_size:
        raise ReceiptInconsistent("The receipt names another envelope size than the one submitted")
    if inclusion_proof is not None and log_entry_bytes is None:
        raise ValueError("An inclusion proof needs the log entry it proves")
    if log_entry_bytes is not None:
        entry = parse_log_entry(log_entry_bytes)
        expected = {"tender": receipt.tender, "lot": receipt.lot, "bidder": receipt.bidder,
                    "bid_version": receipt.bid_version, "envelope_sha256": receipt.envelope_sha256.hex(),
                    "envelope_size": receipt.envelope_size, "at_ms": receipt.received_at_ms}
        if entry["kind"] not in ("submission", "replacement") or \
                any(entry.get(k) != v for k, v in expected.items()):
            raise ReceiptInconsistent("The log entry does not record the submission this receipt confirms")
        if inclusion_proof is not None:
            merkle.verify_inclusion(merkle.leaf_hash(log_entry_bytes), receipt.log_index, head.tree_size,
                                    inclusion_proof, head.root_hash)
    return receipt
