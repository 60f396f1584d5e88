"""Checks shared by submission and closing: the tender lock, open-for-bids, limits, envelope verification.

:func:`lock_tender` is the one lock every submission, withdrawal and closing of a tender takes first, so
that the log order and the deadline cut agree. :func:`check_envelope` is finalize's second step: it
runs without any lock, reads the frozen upload once to verify it, and moves it into the file store.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select

from bidding import sealed_spool as spool
from bidding import translog
from bidding.errors import DeadlinePassed, TransitionRefused
from bidding.models import Lot, Tender, TenderStatus
from bidding.rules import when
from bidding.sealed_errors import EnvelopeRefused, UploadClosed
from bidding.sealed_models import BidderCommitment, BidUpload, TenderLog
from bidding.sealed_rules import Refusal, context_refusal, expected_context, recipient_refusal
from core.actor import Actor
from core.clock import as_utc, now
from core.db import db, locked_scalars
from core.identity.ca import CertificateRefused, verify_certificate
from core.identity.models import Certificate, CertificateSubject, Organisation
from crypto.envelope import EnvelopeInfo, read_header, verify_stream
from crypto.errors import (
    CryptoError,
    EnvelopeFormatError,
    EnvelopeTampered,
    EnvelopeTruncated,
    SignatureInvalid,
    UnsupportedSuite,
)
from crypto.suites import SUITE_P256

DEFAULT_MAX_BID_BYTES = 2 << 30  # 2 GiB per envelope unless the lot says otherwise


def refused(refusal: Refusal) -> EnvelopeRefused:
    return EnvelopeRefused(refusal.message, code=refusal.code, **refusal.params)


def lock_tender(tender_id: int) -> Tender:
    """Lock the tender's row until the transaction ends (PostgreSQL FOR UPDATE; SQLite's write lock).

    Take it first in a fresh transaction: every submission, withdrawal and closing of the tender runs
    under it, so the log order and the deadline cut are the same for all of them.
    """
    return locked_scalars(select(Tender).where(Tender.id == tender_id), Tender, Tender.id == tender_id).one()


def lock_tender_and_log(tender_id: int) -> tuple[Tender, TenderLog | None]:
    """:func:`lock_tender`, then the tender's log read again under the lock.

    Two statements on purpose: under READ COMMITTED, a ``FOR UPDATE`` that waited for the lock sees the
    newest version of the locked row only; a row joined in the same statement would come from the
    snapshot taken before the wait (an older log, hence a log index given twice).
    """
    tender = lock_tender(tender_id)
    return tender, db.session.get(TenderLog, tender_id, populate_existing=True)


def lock_upload(upload_id: str) -> BidUpload | None:
    return locked_scalars(select(BidUpload).where(BidUpload.id == upload_id), BidUpload,
                          BidUpload.id == upload_id).first()


def require_open_for_bids(tender: Tender, at: datetime, *, check_log: bool = True) -> TenderLog | None:
    """Bids are accepted only while the tender is published, not closed, and ``at`` is before the deadline.

    Returns the tender's log (None before its first entry); keep it referenced to reuse it in the transaction.
    ``check_log=False``: the status and the clock only (a check before any byte is read; the log's
    closing, which comes at the deadline, is checked again under the lock).
    """
    log = db.session.get(TenderLog, tender.id) if check_log else None
    deadline = as_utc(tender.bid_deadline_at) if tender.bid_deadline_at else None
    if deadline is not None and (at >= deadline or (log is not None and log.closed_at is not None)):
        raise DeadlinePassed(_l("The bid deadline passed at %(date)s: envelopes are no longer accepted, and an "
                                "upload not finalized by then counts as withdrawn."), date=when(deadline))
    if tender.status != TenderStatus.PUBLISHED or deadline is None:
        raise TransitionRefused(_l("The tender is %(status)s; it does not accept bids."), code="not_open",
                                status=tender.status.value)
    return log


def max_bid_bytes(lot: Lot) -> int:
    default = current_app.extensions["ebid.settings"].extra.get("max_bid_bytes", DEFAULT_MAX_BID_BYTES)
    return lot.max_bid_bytes or int(default)


@dataclass(frozen=True)
class CheckedEnvelope:
    """What step 2 established about a stored envelope."""

    sha256: str
    size: int
    certificate_id: int
    context: bytes
    lot_code: str
    uscc: str
    commitment: BidderCommitment  # the bidder's stand-in in the tender's log, made once the envelope verified


def _candidate_certificates(actor: Actor) -> list[Certificate]:
    stmt = select(Certificate).where(or_(
        Certificate.organisation_id == actor.organisation_id,
        (Certificate.subject_kind == CertificateSubject.PERSON) & (Certificate.person_id == actor.person_id)))
    return list(db.session.scalars(stmt.order_by(Certificate.id)))


def _signer(actor: Actor, key_id: bytes, at: datetime) -> tuple[Certificate, ec.EllipticCurvePublicKey]:
    """The certificate whose key signed the envelope: the organisation's or the acting person's, valid now."""
    refused_reason = None
    for cert in _candidate_certificates(actor):
        public = x509.load_pem_x509_certificate(cert.pem.encode()).public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(public.curve, ec.SECP256R1):
            continue
        if SUITE_P256.key_id(public) != key_id:
            continue
        try:
            verify_certificate(cert.pem, at=at, record=cert)
        except CertificateRefused as exc:
            refused_reason = exc
            continue
        return cert, public
    if refused_reason is not None:
        raise EnvelopeRefused(_l("The envelope is signed with a certificate that cannot be used: %(reason)s"),
                              code="signer_certificate_refused", reason=str(refused_reason.to_dict()["message"]))
    raise EnvelopeRefused(_l("The envelope is signed by key %(key)s..., which is not a valid certificate of your "
                             "organisation or of you; sign it with your organisation's certificate key."),
                          code="signed_by_someone_else", key=key_id[:8].hex())


_CRYPTO_CODES = ((UnsupportedSuite, "unsupported_suite"), (EnvelopeFormatError, "not_an_envelope"),
                 (EnvelopeTruncated, "envelope_truncated"), (EnvelopeTampered, "envelope_tampered"),
                 (SignatureInvalid, "signature_invalid"))


def envelope_error(exc: CryptoError) -> EnvelopeRefused:
    """A crypto verdict as a refusal a bidder can read."""
    code = next((c for cls, c in _CRYPTO_CODES if isinstance(exc, cls)), "envelope_invalid")
    return EnvelopeRefused(_l("The file is not an acceptable sealed envelope: %(reason)s."), code=code,
                           reason=str(exc))


def check_envelope(actor: Actor, upload: BidUpload) -> CheckedEnvelope:
    """Step 2 (no lock held): verify the frozen upload and move it into the store."""
    tender, lot = upload.tender, upload.lot
    source = spool.open_source(upload.id, upload.declared_sha256)
    if source is None:
        raise _data_gone(tender)
    with source:
        checked = _verify(actor, tender, lot, source, upload.declared_size, upload.declared_sha256)
    try:
        spool.adopt(upload.id, upload.declared_sha256)
    except FileNotFoundError:  # closing at the deadline withdrew the upload meanwhile
        raise _data_gone(tender) from None
    return checked


def check_whole(actor: Actor, tender: Tender, lot: Lot, incoming: spool.Incoming, size: int,
                sha256: str) -> CheckedEnvelope:
    """The checks of :func:`check_envelope` on an envelope as it arrives in one request (no lock, no row).

    One pass: the body is written beside the store and verified as it is read (``incoming``); once the
    last byte has arrived and verified, the file is fsynced and renamed into the store. The caller
    drops ``incoming`` on a refusal.
    """
    checked = _verify(actor, tender, lot, _Replay(incoming), size, sha256)
    received = incoming.finish()
    if received != size:  # bytes after the envelope's last segment
        raise envelope_error(EnvelopeTampered(f"The body has {received} bytes, the envelope {size}"))
    incoming.keep(checked.sha256)
    return checked


class _Replay:
    """A reader that can go back to its start once: the header is read twice (checked, then verified)."""

    def __init__(self, reader) -> None:
        self._reader, self._kept, self._replay = reader, bytearray(), memoryview(b"")

    def read(self, n: int = -1) -> bytes:
        if self._replay:
            taken = self._replay[:n] if n >= 0 else self._replay
            self._replay = self._replay[len(taken):]
            return bytes(taken)
        data = self._reader.read(n)
        if self._kept is not None:
            self._kept += data
        return data

    def readinto(self, buffer) -> int:
        if self._replay or self._kept is not None:
            data = self.read(len(buffer))
            memoryview(buffer).cast("B")[:len(data)] = data
            return len(data)
        return self._reader.readinto(buffer)

    def seek(self, position: int) -> int:
        if position != 0 or self._kept is None:
            raise io.UnsupportedOperation("only one return to the start")
        self._replay, self._kept = memoryview(bytes(self._kept)), None
        return 0


def _verify(actor: Actor, tender: Tender, lot: Lot, source: io.BufferedIOBase, size: int,
            sha256: str) -> CheckedEnvelope:
    """Structure, suite, context, recipients, signer's certificate, signature, size and hash of an envelope.

    Once it verified, the bidder's commitment in the tender is made if it has none (outside any lock).
    """
    organisation = db.session.get(Organisation, actor.organisation_id)
    try:
        header = read_header(source)
    except CryptoError as exc:
        raise envelope_error(exc) from exc
    if header.suite_id != SUITE_P256.id:
        raise EnvelopeRefused(_l("The envelope uses algorithm suite %(suite)s; this platform accepts suite 1 "
                                 "(P-256, AES-256-GCM) with its certificates."), code="unsupported_suite",
                              suite=header.suite_id)
    refusal = context_refusal(expected_context(tender.code, lot.code, organisation.uscc), header.context)
    refusal = refusal or recipient_refusal(tender.decryption_mode.value, tender.opening_key_id, header.key_mode,
                                           [(r.role, r.key_id.hex()) for r in header.recipients])
    if refusal is not None:
        raise refused(refusal)
    cert, public = _signer(actor, header.signer_key_id, now())
    source.seek(0)
    try:
        info: EnvelopeInfo = verify_stream(source, signer_public_key=public, expected_size=size,
                                           expected_sha256=bytes.fromhex(sha256))
    except CryptoError as exc:
        raise envelope_error(exc) from exc
    commitment = translog.detached_commitment(tender, organisation.id, organisation.uscc)  # outside the lock
    return CheckedEnvelope(info.sha256.hex(), info.size, cert.id, header.context, lot.code, organisation.uscc,
                           commitment)


def _data_gone(tender: Tender) -> UploadClosed | DeadlinePassed:
    """The spool file vanished: the closing at the deadline withdrew the upload (say so), or it was cancelled."""
    try:
        require_open_for_bids(tender, now())
    except DeadlinePassed as exc:
        return exc
    except TransitionRefused:
        pass
    return UploadClosed(_l("The upload's data is gone (it was withdrawn at the deadline or cancelled)."),
                        code="upload_data_gone")
