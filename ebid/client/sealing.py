"""Sealing a bid (投标文件加密) on the bidder's machine, for one tender and lot.

The tender's sealing parameters (opening key, recipients, key mode) come from the public API; the bid
version from the bidder's own bids. The envelope's context is :func:`crypto.envelope.bid_context` of the
tender code, lot code, the organisation's USCC (from its certificate) and the version, so the envelope
cannot be replayed for another tender, lot, bidder or version. Beside ``bid.ebe`` a small
``bid.ebe.json`` records where it is to go (server, tender and lot ids), for ``ebid client upload``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask_babel import gettext as _

from crypto import canonical, keys
from crypto.envelope import (
    KEY_MODE_SINGLE,
    KEY_MODE_SPLIT,
    ROLE_BIDDER,
    ROLE_TENDER,
    Recipient,
    bid_context,
    check_content_key,
    content_key_from,
    read_header,
    seal_file,
    unwrap_key_part,
    verify_stream,
)
from crypto.errors import CryptoError
from crypto.suites import SUITE_P256
from ebid.client.bidzip import BidFile, read_bid
from ebid.client.errors import ClientError
from ebid.client.http import Api
from ebid.client.state import read_json, write_json

SIDECAR_TYPE = "ebid/client-envelope/v1"
USCC_PREFIX = "NTRCN-"
ENVELOPE_OVERHEAD = 4096  # header and tags of a small envelope, for the early size check


def sidecar_path(envelope: Path) -> Path:
    return envelope.with_name(envelope.name + ".json")


def load_key(path: Path, passphrase: str) -> ec.EllipticCurvePrivateKey:
    """Open an encrypted key made by ``keygen``; wrong passphrases and other files are named as such."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ClientError(_("Cannot read the key file %(path)s (%(reason)s).", path=str(path),
                            reason=exc.strerror or str(exc)), code="key_unreadable") from None
    try:
        return keys.decrypt_private_key(data, passphrase)
    except keys.WrongPassphrase:
        raise ClientError(_("The passphrase does not open the key %(path)s. Check the passphrase (it is case-sensitive; "
                            "a passphrase file is read up to the end of its first line) and try again.",
                            path=str(path)), code="wrong_passphrase") from None
    except keys.KeyFileError as exc:
        raise ClientError(_("%(path)s is not a key made by 'ebid client keygen' (%(reason)s).", path=str(path),
                            reason=str(exc)), code="not_a_key") from None


def load_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(Path(path).read_bytes())
    except OSError as exc:
        raise ClientError(_("Cannot read the certificate %(path)s (%(reason)s).", path=str(path),
                            reason=exc.strerror or str(exc)), code="certificate_unreadable") from None
    except ValueError:
        raise ClientError(_("%(path)s is not a PEM certificate; use the certificate the platform CA issued for your "
                            "organisation.", path=str(path)), code="not_a_certificate") from None


def load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    """A P-256 public key in PEM (``bidder.pub.pem`` as ``keygen`` writes it)."""
    try:
        public = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError):
        public = None
    if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(public.curve, ec.SECP256R1):
        raise ClientError(_("%(path)s is not an EC P-256 public key in PEM; give bidder.pub.pem as 'ebid client keygen' "
                            "wrote it.", path=str(path)), code="not_a_public_key")
    return public


def certificate_uscc(cert: x509.Certificate) -> str:
    """The organisation's USCC in an organisation certificate (organizationIdentifier, ``NTRCN-`` form)."""
    values = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)]
    if not values:
        raise ClientError(_("The certificate is not an organisation certificate (it names no unified social credit "
                            "code); seal with the certificate issued for your organisation."), code="not_org_certificate")
    value = str(values[0])
    return value[len(USCC_PREFIX):] if value.upper().startswith(USCC_PREFIX) else value


def check_pair(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, at: datetime | None = None) -> None:
    """The certificate must certify this key and be valid now."""
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
        raise ClientError(_("The certificate is for another key than the one given with --key; use the key you made "
                            "the certificate request with."), code="key_certificate_mismatch")
    at = at or datetime.now(UTC)
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        raise ClientError(_("The certificate is valid from %(start)s to %(end)s, not now; ask the platform CA for a new "
                            "one.", start=cert.not_valid_before_utc.date().isoformat(),
                            end=cert.not_valid_after_utc.date().isoformat()), code="certificate_expired")


@dataclass(frozen=True)
class SealedBid:
    path: Path
    sidecar: dict[str, Any]


def lot_of(params: dict[str, Any], lot_id: int) -> dict[str, Any]:
    lot = next((lot for lot in params["lots"] if lot["id"] == lot_id), None)
    if lot is None:
        known = "; ".join(f"{lot['id']} ({lot['code']} {lot['title']})" for lot in params["lots"])
        raise ClientError(_("Tender %(tender)s has no lot with id %(lot)s. Its lots (id, code, title): %(known)s.",
                            tender=params["tender_code"], lot=lot_id, known=known), code="wrong_lot")
    return lot


def _check_open(params: dict[str, Any]) -> None:
    if params["accepting_bids"]:
        return
    deadline = params.get("bid_deadline_at")
    raise ClientError(_("Tender %(tender)s does not accept bids now (bid deadline %(deadline)s): nothing can be sealed "
                        "or submitted for it.", tender=params["tender_code"], deadline=deadline or "-"),
                      code="deadline_passed")


def _opening_key(params: dict[str, Any]) -> ec.EllipticCurvePublicKey | None:
    info = params.get("opening_key")
    if not params["recipients"]["tender_key"]:
        return None
    if not info:
        raise ClientError(_("The tender requires its opening key as a recipient, but the server does not publish one."),
                          code="no_opening_key")
    public = serialization.load_pem_public_key(info["public_key_pem"].encode())
    if not isinstance(public, ec.EllipticCurvePublicKey) or SUITE_P256.key_id(public).hex() != info["key_id"]:
        raise ClientError(_("The tender's published opening key does not match its key id; do not seal for it and "
                            "tell the trading centre."), code="opening_key_mismatch")
    return public


def next_version(api: Api, tender_id: int, lot_id: int, organisation_id: int | None) -> int:
    """The version the next envelope for this lot must carry (1, then 2 for a replacement, ...)."""
    api.require_token()
    lots = api.get("/api/my/bids", {"tender_id": tender_id, "organisation_id": organisation_id})
    for item in lots:
        if item["lot_id"] == lot_id:
            return int(item["next_bid_version"])
    return 1


def self_check(path: Path, key: ec.EllipticCurvePrivateKey, context: bytes,
               own_public_key: ec.EllipticCurvePublicKey | None = None) -> None:
    """Re-read the sealed file: structure and signature, and that the bidder's own key opens its part."""
    with path.open("rb") as fh:
        verify_stream(fh, signer_public_key=key.public_key(), expected_context=context)
    if own_public_key is not None:
        return  # the decryption key is held elsewhere; its part cannot be checked here
    with path.open("rb") as fh:
        header = read_header(fh)
    if not any(r.role == ROLE_BIDDER for r in header.recipients):
        return
    if header.key_mode == KEY_MODE_SINGLE:
        with path.open("rb") as fh:
            check_content_key(fh, content_key_from(header, [key]))
    else:
        unwrap_key_part(header, key)


def seal_for(params: dict[str, Any], *, lot_id: int, bid_path: Path, key: ec.EllipticCurvePrivateKey,
             cert: x509.Certificate, out: Path, version: int, server: str | None = None,
             own_public_key: ec.EllipticCurvePublicKey | None = None,
             organisation_id: int | None = None) -> SealedBid:
    """Seal ``bid_path`` to ``out`` with the tender's sealing parameters (as ``GET .../sealing`` serves them).

    The envelope is signed by the certificate's key; the bidder's part of the content key is wrapped for
    ``own_public_key`` (default: the certificate's key), the key the bidder decrypts with at the opening.
    """
    bid: BidFile = read_bid(bid_path)
    check_pair(key, cert)
    uscc = certificate_uscc(cert)
    lot = lot_of(params, lot_id)
    if bid.offer.lot != lot["code"]:
        raise ClientError(_("The bid was built for lot %(built)s, but lot id %(lot_id)s is lot %(code)s of tender "
                            "%(tender)s. Rebuild the bid with --lot %(code)s, or seal it for the lot it was built for.",
                            built=bid.offer.lot, lot_id=lot_id, code=lot["code"], tender=params["tender_code"]),
                          code="wrong_lot")
    _check_open(params)
    if bid.size + ENVELOPE_OVERHEAD > lot["max_envelope_bytes"]:
        raise ClientError(_("The bid has %(size)s bytes; lot %(code)s accepts envelopes of at most %(limit)s bytes.",
                            size=bid.size, code=lot["code"], limit=lot["max_envelope_bytes"]), code="too_large")
    if params.get("suite", 1) != SUITE_P256.id:
        raise ClientError(_("The tender asks for algorithm suite %(suite)s, which this client does not seal with.",
                            suite=params["suite"]), code="unsupported_suite")
    recipients = []
    tender_key = _opening_key(params)
    if tender_key is not None:
        recipients.append(Recipient(ROLE_TENDER, tender_key))
    if params["recipients"]["bidder_key"]:
        recipients.append(Recipient(ROLE_BIDDER, own_public_key or key.public_key()))
    if not recipients:
        raise ClientError(_("The tender names no recipient for the content key; it cannot be sealed."),
                          code="no_recipients")
    key_mode = KEY_MODE_SPLIT if params["key_mode"] == "split" else KEY_MODE_SINGLE
    context = bid_context(params["tender_code"], lot["code"], uscc, version)
    try:
        info = seal_file(bid_path, out, signer=key, recipients=recipients, context=context, key_mode=key_mode,
                         segment_size=int(params.get("segment_size") or 1 << 20))
        self_check(out, key, context, own_public_key)
    except CryptoError as exc:
        Path(out).unlink(missing_ok=True)
        raise ClientError(_("Sealing failed: %(reason)s", reason=str(exc)), code="seal_failed") from None
    sidecar = {"type": SIDECAR_TYPE, "server": server, "tender_id": params["tender_id"], "lot_id": lot_id,
               "tender_code": params["tender_code"], "lot_code": lot["code"], "bidder_uscc": uscc,
               "bid_version": version, "organisation_id": organisation_id, "sha256": info.sha256.hex(),
               "size": info.size, "key_mode": params["key_mode"], "decryption_mode": params["decryption_mode"],
               "recipients": [{"role": r.role, "key_id": SUITE_P256.key_id(r.public_key).hex()} for r in recipients],
               "signer_key_id": SUITE_P256.key_id(key.public_key()).hex(), "bid_sha256": bid.sha256,
               "bid_size": bid.size, "sealed_at": datetime.now(UTC).isoformat(timespec="seconds")}
    write_json(sidecar_path(Path(out)), sidecar)
    return SealedBid(Path(out), sidecar)


def seal_bid(api: Api, *, tender_id: int, lot_id: int, bid_path: Path, key: ec.EllipticCurvePrivateKey,
             cert: x509.Certificate, out: Path, version: int | None = None,
             own_public_key: ec.EllipticCurvePublicKey | None = None, organisation_id: int | None = None) -> SealedBid:
    """Fetch the tender's sealing parameters (and the next bid version), then :func:`seal_for`."""
    read_bid(bid_path)
    check_pair(key, cert)
    params = api.get(f"/api/tenders/{tender_id}/sealing")
    lot_of(params, lot_id)
    _check_open(params)
    if version is None:
        version = next_version(api, tender_id, lot_id, organisation_id)
    return seal_for(params, lot_id=lot_id, bid_path=bid_path, key=key, cert=cert, out=out, version=version,
                    server=api.server, own_public_key=own_public_key, organisation_id=organisation_id)


def envelope_target(envelope: Path, tender_id: int | None, lot_id: int | None) -> dict[str, Any]:
    """Where an envelope goes: its context (read from the header) with the ids from the sidecar or the options."""
    try:
        with Path(envelope).open("rb") as fh:
            header = read_header(fh)
        context = canonical.decode(header.context)
    except OSError as exc:
        raise ClientError(_("Cannot read the envelope %(path)s (%(reason)s).", path=str(envelope),
                            reason=exc.strerror or str(exc)), code="envelope_unreadable") from None
    except CryptoError as exc:
        raise ClientError(_("%(path)s is not a sealed envelope (%(reason)s); make it with 'ebid client seal'.",
                            path=str(envelope), reason=str(exc)), code="not_an_envelope") from None
    if not isinstance(context, dict) or context.get("type") != "ebid/bid-context/v1":
        raise ClientError(_("The envelope does not say which tender and lot it is for; seal it with 'ebid client "
                            "seal'."), code="not_a_bid")
    sidecar = read_json(sidecar_path(Path(envelope))) or {}
    target = {"tender_code": context["tender"], "lot_code": context["lot"], "bidder_uscc": context["bidder"],
              "bid_version": context["bid_version"], "tender_id": tender_id or sidecar.get("tender_id"),
              "lot_id": lot_id or sidecar.get("lot_id"), "organisation_id": sidecar.get("organisation_id"),
              "server": sidecar.get("server")}
    if target["tender_id"] is None or target["lot_id"] is None:
        raise ClientError(_("Give --tender and --lot (ids): the envelope has no %(name)s beside it to say where it goes.",
                            name=sidecar_path(Path(envelope)).name), code="target_missing")
    return target
