"""The signed message protocol between the platform and guarantee issuers (保函出函机构接口协议).

Pure functions, shared by the platform (``guarantees.api`` callbacks, the outbox sender) and the
reference issuer (``guarantees.issuer_sim``). No Flask, no database: the caller supplies the keys,
the clock (``now``) and a :class:`NonceStore`.

Every message, in both directions, is one JSON object::

    {"version": 1, "type": T, "sender": S, "order_no": O, "nonce": N,
     "timestamp": "2025-01-31T08:00:00Z", "data": {...}, "signature": SIG}

``SIG`` is base64 of the DER ECDSA P-256 / SHA-256 signature over :func:`canonical_bytes` of the
object without ``signature``. Amounts travel as decimal strings; floats are refused (their JSON
text is not canonical across implementations).

A receiver refuses, in this order: a malformed message (400), an unknown sender (401), a bad
signature (401), a timestamp more than ``max_skew`` seconds from its clock (401), an unknown order
(400, not for ``OrderApply``), a nonce already seen from that sender (409). :func:`open_message`
runs the whole list. The refusals are in :mod:`guarantees.protocol_errors` (re-exported here); the
platform adds one more, :class:`RetiredCertificate`, for a sender signing with a replaced certificate.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from guarantees.protocol_errors import (  # noqa: F401 - the refusals are part of this module's interface
    BadSignature,
    MalformedMessage,
    ProtocolError,
    ReplayedNonce,
    RetiredCertificate,
    StaleTimestamp,
    StateConflict,
    UnknownOrder,
    UnknownSender,
)

VERSION = 1
MAX_SKEW_SECONDS = 300
NONCE_RETENTION_SECONDS = 600

# Platform -> issuer
ORDER_APPLY = "OrderApply"
ORDER_CANCEL = "OrderCancel"
RELEASE = "Release"
CLAIM = "Claim"
DECRYPTION_NOTICE = "DecryptionNotice"
# Issuer -> platform (callbacks) and the registry answer
RESULT = "Result"
LETTER = "Letter"
RELEASE_NOTIFY = "ReleaseNotify"
CLAIM_RESULT = "ClaimResult"
LETTER_STATUS = "LetterStatus"

PLATFORM_TO_ISSUER = (ORDER_APPLY, ORDER_CANCEL, RELEASE, CLAIM, DECRYPTION_NOTICE)
ISSUER_TO_PLATFORM = (RESULT, LETTER, RELEASE_NOTIFY, CLAIM_RESULT, LETTER_STATUS)
MESSAGE_TYPES = PLATFORM_TO_ISSUER + ISSUER_TO_PLATFORM

# Path (below the issuer's api_base_url) each platform message is POSTed to.
ISSUER_PATHS = {
    ORDER_APPLY: "/orders",
    ORDER_CANCEL: "/orders/cancel",
    RELEASE: "/releases",
    CLAIM: "/claims",
    DECRYPTION_NOTICE: "/orders/reveal",
}
# The keys of ``data`` per message type (required; a sender may add others, a receiver ignores them).
# Amounts, premiums and rates are decimal strings ("20000.00", "1.5"); times are protocol timestamps.
DATA_FIELDS: dict[str, tuple[str, ...]] = {
    ORDER_APPLY: ("order_no", "tender_code", "tender_title", "lot_code", "lot_title", "bid_deadline",
                  "validity_days", "amount", "guarantee_type", "beneficiary", "principal", "product_code",
                  "premium", "rate_permille"),
    # also sent with OrderApply: "extra_validity_days" (int) and "valid_until_required" (timestamp)
    ORDER_CANCEL: ("reason",),
    RELEASE: ("guarantee_no", "reason"),
    CLAIM: ("guarantee_no", "claim_no", "amount", "reason", "trigger", "evidence"),  # evidence: [sha256 hex]
    DECRYPTION_NOTICE: ("guarantee_no", "tender_code", "lot_code"),
    RESULT: ("status",),  # approved: + guarantee_no, issued_at, valid_from, valid_until; rejected: + reason
    LETTER: ("guarantee_no", "filename", "pdf_base64", "sha256"),  # optional "verification_code"
    RELEASE_NOTIFY: ("guarantee_no", "released_at"),
    CLAIM_RESULT: ("claim_no", "status", "amount_paid", "reason", "decided_at"),
    LETTER_STATUS: ("guarantee_no", "sha256", "status"),
}
CALLBACK_PATH = "/api/guarantees/callbacks"
LETTER_STATUS_PATH = "/letters/{guarantee_no}"
LETTER_STATUSES = ("valid", "released", "claimed", "paid", "cancelled")

# Letter verification codes (验真码): 10 characters from an alphabet without look-alikes (no 0/O, 1/I/L).
VERIFICATION_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
VERIFICATION_CODE_LENGTH = 10

_NONCE_RE = re.compile(r"^[0-9a-f]{32}$")
_TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_FIELDS = ("version", "type", "sender", "order_no", "nonce", "timestamp", "data", "signature")


# --------------------------------------------------------------------------- building blocks


def generate_nonce() -> str:
    """Return 32 random lowercase hex characters."""
    return secrets.token_hex(16)


def generate_verification_code() -> str:
    """A random letter verification code (10 characters, unambiguous alphabet)."""
    return "".join(secrets.choice(VERIFICATION_ALPHABET) for _ in range(VERIFICATION_CODE_LENGTH))


def is_verification_code(value: Any) -> bool:
    """True for a well-formed verification code (case-insensitive input is the caller's business)."""
    return (isinstance(value, str) and len(value) == VERIFICATION_CODE_LENGTH
            and all(c in VERIFICATION_ALPHABET for c in value))


def format_timestamp(value: datetime) -> str:
    """RFC 3339 UTC with ``Z``, seconds precision."""
    if value.tzinfo is None:
        raise ValueError("timestamps must be aware datetimes")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> datetime:
    """Parse a protocol timestamp (``YYYY-MM-DDTHH:MM:SSZ``) to an aware UTC datetime."""
    if not isinstance(text, str) or not _TIMESTAMP_RE.match(text):
        raise MalformedMessage("timestamp must look like 2025-01-31T08:00:00Z")
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise MalformedMessage("timestamp is not a real date and time") from exc


def canonical_bytes(msg: Mapping[str, Any]) -> bytes:
    """The bytes that are signed: canonical JSON of ``msg`` without its ``signature``."""
    body = {k: v for k, v in msg.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode(msg: Mapping[str, Any]) -> bytes:
    """HTTP body for a signed message (UTF-8 JSON)."""
    return json.dumps(msg, ensure_ascii=False).encode("utf-8")


def normalise_data(value: Any, path: str = "data") -> Any:
    """Decimals to strings, datetimes to protocol timestamps; floats refused (not canonical)."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        raise ValueError(f"{path}: floats are not allowed in protocol messages; send a decimal string")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, Mapping):
        return {str(k): normalise_data(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalise_data(v, f"{path}[{i}]") for i, v in enumerate(value)]
    raise ValueError(f"{path}: {type(value).__name__} cannot be sent in a protocol message")


def _contains_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_contains_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_float(v) for v in value)
    return False


def _require_p256(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> None:
    if not isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) or not isinstance(
        key.curve, ec.SECP256R1
    ):
        raise ValueError("protocol keys must be ECDSA P-256 (secp256r1)")


# --------------------------------------------------------------------------- sign / verify


def sign_message(private_key: ec.EllipticCurvePrivateKey, type: str, sender: str, order_no: str,  # noqa: A002
                 data: Mapping[str, Any], *, now: datetime, nonce: str | None = None) -> dict:
    """Build and sign a message; returns the full dict including ``signature``."""
    _require_p256(private_key)
    if type not in MESSAGE_TYPES:
        raise ValueError(f"unknown message type {type!r}")
    if not sender or not isinstance(sender, str):
        raise ValueError("sender must be a non-empty string")
    if not isinstance(order_no, str):
        raise ValueError("order_no must be a string")
    nonce = nonce if nonce is not None else generate_nonce()
    if not _NONCE_RE.match(nonce):
        raise ValueError("nonce must be 32 lowercase hex characters")
    msg: dict[str, Any] = {
        "version": VERSION, "type": type, "sender": sender, "order_no": order_no, "nonce": nonce,
        "timestamp": format_timestamp(now), "data": normalise_data(dict(data)),
    }
    der = private_key.sign(canonical_bytes(msg), ec.ECDSA(hashes.SHA256()))
    msg["signature"] = base64.b64encode(der).decode("ascii")
    return msg


def check_structure(msg: Any) -> dict:
    """Refuse anything that is not a well-formed version-1 message (``MalformedMessage``)."""
    if not isinstance(msg, dict):
        raise MalformedMessage("the body must be a JSON object")
    missing = [f for f in _FIELDS if f not in msg]
    if missing:
        raise MalformedMessage("missing field(s) " + ", ".join(missing))
    extra = sorted(set(msg) - set(_FIELDS))
    if extra:
        raise MalformedMessage("unexpected field(s) " + ", ".join(extra))
    if msg["version"] != VERSION or isinstance(msg["version"], bool):
        raise MalformedMessage(f"version must be {VERSION}")
    if msg["type"] not in MESSAGE_TYPES:
        raise MalformedMessage("unknown type " + repr(msg["type"])[:60])
    for name in ("sender", "order_no", "signature"):
        if not isinstance(msg[name], str):
            raise MalformedMessage(f"{name} must be a string")
    if not msg["sender"]:
        raise MalformedMessage("sender must not be empty")
    if not isinstance(msg["nonce"], str) or not _NONCE_RE.match(msg["nonce"]):
        raise MalformedMessage("nonce must be 32 lowercase hex characters")
    parse_timestamp(msg["timestamp"])
    if not isinstance(msg["data"], dict):
        raise MalformedMessage("data must be a JSON object")
    if _contains_float(msg["data"]):
        raise MalformedMessage("numbers with a fraction must be sent as decimal strings")
    return msg


PublicKeys = ec.EllipticCurvePublicKey | Sequence[ec.EllipticCurvePublicKey]
"""One key, or several a sender may sign with (around a certificate rotation)."""


def signed_by(msg: Mapping[str, Any], public_key: ec.EllipticCurvePublicKey) -> bool:
    """True when ``msg["signature"]`` is a valid signature of ``msg`` under ``public_key``."""
    _require_p256(public_key)
    try:
        der = base64.b64decode(msg["signature"], validate=True)
        public_key.verify(der, canonical_bytes(msg), ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, TypeError, InvalidSignature):
        return False
    return True


def verify_message(msg: Any, public_key: PublicKeys, *, now: datetime,
                   max_skew: int = MAX_SKEW_SECONDS) -> dict:
    """Check structure, signature (under any of the keys given) and timestamp; return ``msg`` or refuse.

    The nonce and the order are the receiver's business (:func:`open_message`).
    """
    check_structure(msg)
    keys = [public_key] if isinstance(public_key, ec.EllipticCurvePublicKey) else list(public_key)
    if not any(signed_by(msg, key) for key in keys):
        raise BadSignature()
    sent_at = parse_timestamp(msg["timestamp"])
    skew = abs((now - sent_at).total_seconds())
    if skew > max_skew:
        raise StaleTimestamp(msg["timestamp"], int(skew), max_skew)
    return msg


# --------------------------------------------------------------------------- nonces


class NonceStore(Protocol):
    """Remembers (sender, nonce) pairs for at least ``NONCE_RETENTION_SECONDS``."""

    def remember(self, sender: str, nonce: str, at: datetime) -> bool:
        """Record the pair; return False (and record nothing) if it was already seen."""
        ...


class MemoryNonceStore:
    """Thread-safe in-memory NonceStore (tests, the simulator); forgets pairs after ``retention``."""

    def __init__(self, retention: int = NONCE_RETENTION_SECONDS):
        if retention < NONCE_RETENTION_SECONDS:
            raise ValueError(f"nonces must be kept at least {NONCE_RETENTION_SECONDS} s")
        self.retention = timedelta(seconds=retention)
        self._seen: dict[tuple[str, str], datetime] = {}
        self._lock = threading.Lock()

    def remember(self, sender: str, nonce: str, at: datetime) -> bool:
        with self._lock:
            cutoff = at - self.retention
            for key in [k for k, seen_at in self._seen.items() if seen_at < cutoff]:
                del self._seen[key]
            if (sender, nonce) in self._seen:
                return False
            self._seen[(sender, nonce)] = at
            return True


# --------------------------------------------------------------------------- receiving


@dataclass(frozen=True)
class Received:
    """A message that passed every check."""

    type: str
    sender: str
    order_no: str
    nonce: str
    timestamp: datetime
    data: dict
    raw: dict


def parse_body(body: bytes | str | Mapping[str, Any]) -> dict:
    """Decode an HTTP body into a message dict (``MalformedMessage`` if it is not JSON)."""
    if isinstance(body, Mapping):
        return dict(body)
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedMessage("the body is not UTF-8 JSON") from exc


def open_message(body: bytes | str | Mapping[str, Any], *,
                 key_for_sender: Callable[[str], PublicKeys | None],
                 nonces: NonceStore, now: datetime,
                 order_known: Callable[[str, str], bool] | None = None,
                 allowed_types: tuple[str, ...] = MESSAGE_TYPES,
                 max_skew: int = MAX_SKEW_SECONDS) -> Received:
    """Run every receiver check and record the nonce; return the accepted message.

    ``key_for_sender(sender)`` returns the public key of the sender's registered certificate (or the
    keys it may sign with, around a rotation), or None (no key: unknown sender); ``order_known(sender, order_no)`` says whether the order exists (skipped for OrderApply).
    """
    msg = check_structure(parse_body(body))
    if msg["type"] not in allowed_types:
        raise MalformedMessage(f"{msg['type']} is not accepted at this address")
    key = key_for_sender(msg["sender"])
    if key is None or (not isinstance(key, ec.EllipticCurvePublicKey) and not key):
        raise UnknownSender(msg["sender"])
    verify_message(msg, key, now=now, max_skew=max_skew)
    if order_known is not None and msg["type"] != ORDER_APPLY and not order_known(msg["sender"], msg["order_no"]):
        raise UnknownOrder(msg["order_no"])
    if not nonces.remember(msg["sender"], msg["nonce"], now):
        raise ReplayedNonce(msg["sender"], msg["nonce"])
    return Received(type=msg["type"], sender=msg["sender"], order_no=msg["order_no"], nonce=msg["nonce"],
                    timestamp=parse_timestamp(msg["timestamp"]), data=msg["data"], raw=msg)


# --------------------------------------------------------------------------- keys


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 key (tests, the simulator's first start)."""
    return ec.generate_private_key(ec.SECP256R1())


def load_private_key(pem: bytes | str, password: bytes | None = None) -> ec.EllipticCurvePrivateKey:
    """Load a PEM P-256 private key."""
    data = pem.encode() if isinstance(pem, str) else pem
    key = serialization.load_pem_private_key(data, password=password)
    _require_p256(key)  # type: ignore[arg-type]
    return key  # type: ignore[return-value]


def public_key_from_pem(pem: bytes | str) -> ec.EllipticCurvePublicKey:
    """The P-256 public key of a PEM certificate or a PEM public key."""
    data = pem.encode() if isinstance(pem, str) else pem
    if b"BEGIN CERTIFICATE" in data:
        key = x509.load_pem_x509_certificate(data).public_key()
    else:
        key = serialization.load_pem_public_key(data)
    _require_p256(key)  # type: ignore[arg-type]
    return key  # type: ignore[return-value]
