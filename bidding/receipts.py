"""The platform's two signing keys and the receipts (投标回执) they sign.

* the **log key** signs the tree heads of every tender's transparency log;
* the **receipt key** signs the receipt a bidder gets when its envelope is accepted.

Both are EC P-256 server keys, made on first use in ``settings.keys_dir`` (``log.key.pem`` and
``receipt.key.pem``, PKCS#8, mode 0600) and separate from the CA key. Neither can open a bid: they only
sign. Their public halves are served at ``GET /api/transparency/keys`` so anyone can verify offline.
A receipt's format is :mod:`crypto.receipt` (``ebid/receipt/v1``); see docs/bids-api.md.
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import current_app

from crypto import keys
from crypto.receipt import SignedDocument, sign_receipt
from crypto.suites import SUITE_P256

LOG_KEY_FILE = "log.key.pem"
RECEIPT_KEY_FILE = "receipt.key.pem"
_CACHE = "ebid.bids.signing_keys"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms(at: datetime) -> int:
    """Integer milliseconds since the Unix epoch (what receipts and tree heads carry)."""
    return (at - _EPOCH) // timedelta(milliseconds=1)


def key_id_hex(public_key: ec.EllipticCurvePublicKey) -> str:
    """The key id used everywhere in ebid: hex SHA-256 of the SubjectPublicKeyInfo DER."""
    return SUITE_P256.key_id(public_key).hex()


def _create(path: Path) -> None:
    """Write a new key to ``path`` atomically; a concurrent creator's key wins if it was first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = keys.generate_private_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption())
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # never overwrites: another process may have made the key meanwhile
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)


def load_or_create_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The P-256 key stored at ``path``, made there (mode 0600) if it does not exist yet."""
    if not path.exists():
        _create(path)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise RuntimeError(f"{path} does not hold an EC P-256 private key")
    return key


def _key(name: str) -> ec.EllipticCurvePrivateKey:
    cache: dict[str, Any] = current_app.extensions.setdefault(_CACHE, {})
    if name not in cache:
        cache[name] = load_or_create_key(Path(current_app.extensions["ebid.settings"].keys_dir) / name)
    return cache[name]


def log_key() -> ec.EllipticCurvePrivateKey:
    """The key that signs tree heads."""
    return _key(LOG_KEY_FILE)


def receipt_key() -> ec.EllipticCurvePrivateKey:
    """The key that signs receipts."""
    return _key(RECEIPT_KEY_FILE)


def public_keys() -> list[dict[str, str]]:
    """The public halves, for ``GET /api/transparency/keys``."""
    out = []
    for use, key in (("log", log_key()), ("receipt", receipt_key())):
        public = key.public_key()
        out.append({"use": use, "algorithm": "ECDSA P-256 SHA-256 (raw r||s)", "key_id": key_id_hex(public),
                    "public_key_pem": keys.public_key_pem(public).decode()})
    return out


def issue_receipt(*, tender_code: str, lot_code: str, bidder: str, bid_version: int, envelope_sha256: str,
                  envelope_size: int, received_at: datetime, log_index: int,
                  tree_head: SignedDocument) -> SignedDocument:
    """Sign the receipt of an accepted envelope (``bidder`` is the bidder's commitment in this tender)."""
    return sign_receipt(receipt_key(), tender=tender_code, lot=lot_code, bidder=bidder, bid_version=bid_version,
                        envelope_sha256=bytes.fromhex(envelope_sha256), envelope_size=envelope_size,
                        received_at_ms=epoch_ms(received_at), log_index=log_index, tree_head=tree_head)
