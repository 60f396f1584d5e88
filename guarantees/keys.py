"""The platform's identity in the issuer protocol: its sender id, message-signing key and certificate.

The key is an EC P-256 key made on first use in ``settings.keys_dir`` (``guarantee-platform.key.pem``,
mode 0600, like the Flask secret: the worker signs unattended). Its self-signed certificate
(``guarantee-platform.cert.pem``) is what issuers register to check the platform's messages
(``ebid guarantees platform-cert`` prints it). The key never enters logs or the audit trail.

The sender id is ``settings.extra["guarantee_platform_id"]``, else ``EBID_GUARANTEE_PLATFORM_ID``, else
``ebid-platform``.
"""

from __future__ import annotations

import os
import secrets
import threading
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask import current_app

from core.clock import now
from core.config import Settings
from guarantees import protocol

KEY_FILE = "guarantee-platform.key.pem"
CERT_FILE = "guarantee-platform.cert.pem"
DEFAULT_PLATFORM_ID = "ebid-platform"
_lock = threading.Lock()


def _settings(settings: Settings | None) -> Settings:
    return settings or current_app.extensions["ebid.settings"]


def platform_id(settings: Settings | None = None) -> str:
    """The platform's ``sender`` in protocol messages."""
    settings = _settings(settings)
    return (settings.extra.get("guarantee_platform_id") or os.environ.get("EBID_GUARANTEE_PLATFORM_ID")
            or DEFAULT_PLATFORM_ID)


def _write_new(path: Path, data: bytes, mode: int) -> bool:
    """Publish ``path`` with ``data`` unless it exists (another process won the race); True if written.

    The file is written completely under a temporary name, then hard-linked into place, so a reader
    never sees a half-written key.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def platform_key(settings: Settings | None = None) -> ec.EllipticCurvePrivateKey:
    """The platform's message-signing key, created on first use."""
    settings = _settings(settings)
    path = settings.keys_dir / KEY_FILE
    with _lock:
        if not path.exists():
            key = protocol.generate_private_key()
            _write_new(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()), 0o600)
        return protocol.load_private_key(path.read_bytes())


def platform_certificate_pem(settings: Settings | None = None) -> str:
    """The platform's self-signed message certificate (PEM), created with the key on first use."""
    settings = _settings(settings)
    path = settings.keys_dir / CERT_FILE
    key = platform_key(settings)
    if path.exists():
        pem = path.read_text()
        if protocol.public_key_from_pem(pem).public_numbers() == key.public_key().public_numbers():
            return pem
        path.unlink()  # a key replaced by the operator: certify the new one
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, platform_id(settings)),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ebid e-guarantee messages")])
    start = now() - timedelta(minutes=5)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    _write_new(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return path.read_text()
