"""The opening key ceremony (开标密钥仪式) held when a tender is published.

An EC P-256 key pair is made in memory. The public key (PEM and key id) is published with the tender;
bidders wrap every envelope's content key for it. The private key is split k-of-n with Shamir
(:mod:`crypto.shamir`) among the custodians named in the tender, each share is encrypted (HPKE) to the
custodian's current person certificate, and the private key object is dropped: it is never written to
the database, the file store, a log or the audit trail. Only k custodians together can rebuild it, and
:func:`crypto.shamir.combine` checks the result against the published key.

Which tenders get a key:

* decryption mode ``custodians``, ``bidder_then_custodians`` or ``double_envelope``: always; publication
  is refused without custodians;
* mode ``bidder``: a key only when custodians are named (then bids must also be wrapped for it, which
  gives the custodians a fallback when a bidder cannot decrypt); otherwise none.

The threshold must be at least 2: one custodian alone must never be able to open bids. Every custodian
needs a valid (unexpired, unrevoked, platform-issued) person certificate with an EC P-256 key, or
publication is refused naming who lacks one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from bidding import translog
from bidding.errors import RulesViolated
from bidding.models import DecryptionMode, Tender
from bidding.policy import notify
from bidding.receipts import epoch_ms
from bidding.rules import Violation
from bidding.sealed_models import OpeningKeyShare
from core import audit
from core.actor import Actor
from core.clock import as_utc
from core.db import db
from core.identity.ca import CertificateRefused, verify_certificate
from core.identity.models import Certificate, CertificateSubject, Person
from crypto import canonical, keys, shamir

KEY_MODES = frozenset({DecryptionMode.CUSTODIANS, DecryptionMode.BIDDER_THEN_CUSTODIANS,
                       DecryptionMode.DOUBLE_ENVELOPE})
SHARE_CONTEXT_TYPE = "ebid/opening-key-share/v1"


def share_context(tender_code: str, custodian_id: int, share_index: int) -> bytes:
    """The associated data binding an encrypted share to its tender, custodian and index."""
    return canonical.encode({"type": SHARE_CONTEXT_TYPE, "tender": tender_code, "custodian": custodian_id,
                             "share_index": share_index})


@dataclass
class Ceremony:
    """What the ceremony made before the tender was written: public key, threshold, encrypted shares."""

    public_key_pem: str
    key_id: str
    threshold: int
    shares: list[OpeningKeyShare]


def _usable(cert: Certificate, at: datetime) -> ec.EllipticCurvePublicKey | None:
    try:
        verify_certificate(cert.pem, at=at)
    except CertificateRefused:
        return None
    public = x509.load_pem_x509_certificate(cert.pem.encode()).public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(public.curve, ec.SECP256R1):
        return None
    return public


def custodian_certificate(person: Person, at: datetime) -> tuple[Certificate, ec.EllipticCurvePublicKey] | None:
    """The custodian's newest valid person certificate with a P-256 key, or None."""
    rows = db.session.scalars(select(Certificate).where(
        Certificate.person_id == person.id, Certificate.subject_kind == CertificateSubject.PERSON,
        Certificate.revoked_at.is_(None)).order_by(Certificate.not_before.desc(), Certificate.id.desc()))
    for cert in rows:
        if not as_utc(cert.not_before) <= at <= as_utc(cert.not_after):
            continue
        public = _usable(cert, at)
        if public is not None:
            return cert, public
    return None


def _refuse(code: str, field: str, message, **params) -> RulesViolated:
    return RulesViolated([Violation(code, field, message, params)])


def prepare(tender: Tender, at: datetime) -> Ceremony | None:
    """Make the opening key for ``tender`` (or decide it needs none) and set its public half on the tender.

    Call before the tender's publication is flushed. Refuses (RulesViolated, nothing changed) when a
    custodian lacks a valid certificate, the threshold is below 2, or a key mode has no custodians.
    """
    codes = [lot.code for lot in tender.lots]
    if len(set(codes)) != len(codes):
        raise _refuse("lot_codes_not_unique", "lots",
                      _l("Give every lot its own code: bids are sealed for a lot code (codes used: %(codes)s)."),
                      codes=", ".join(codes))
    custodians = [c.person for c in tender.custodians]
    if not custodians:
        if tender.decryption_mode in KEY_MODES:
            raise _refuse("custodians_required", "custodian_ids",
                          _l("This decryption mode needs key custodians: name at least %(n)s and a threshold."),
                          n=max(tender.custodian_threshold or 2, 2))
        return None
    k, n = tender.custodian_threshold, len(custodians)
    if k is None or not 2 <= k <= n:
        raise _refuse("custodian_threshold_too_low", "custodian_threshold",
                      _l("At least 2 of the %(n)s custodians must be needed to rebuild the opening key, so that "
                         "no one custodian alone can open bids; set a threshold between 2 and %(n)s."), n=n)
    found, missing = [], []
    for person in custodians:
        hit = custodian_certificate(person, at)
        (found if hit else missing).append((person, hit))
    if missing:
        raise _refuse("custodian_certificate_missing", "custodian_ids",
                      _l("The opening key cannot be shared: no valid personal certificate for custodian(s) "
                         "%(names)s. Each key custodian needs a certificate from the platform CA before "
                         "publication."), names=", ".join(p.name for p, _ in missing))
    private = keys.generate_private_key()
    public = private.public_key()
    split = shamir.split_private_key(private, k, n)
    del private  # from here on only the shares (encrypted below) exist
    rows = []
    for share, (person, (cert, cert_key)) in zip(split, found, strict=True):
        sealed = shamir.encrypt_share(share, cert_key, context=share_context(tender.code, person.id, share.index))
        rows.append(OpeningKeyShare(custodian_id=person.id, certificate_id=cert.id, share_index=share.index,
                                    threshold=k, count=n, encrypted_share=sealed,
                                    share_sha256=hashlib.sha256(share.to_bytes()).hexdigest()))
    del split
    ceremony = Ceremony(keys.public_key_pem(public).decode(), shamir.key_id(public).hex(), k, rows)
    tender.opening_public_key_pem = ceremony.public_key_pem
    tender.opening_key_id = ceremony.key_id
    return ceremony


def record(actor: Actor, tender: Tender, ceremony: Ceremony | None, at: datetime) -> None:
    """After publication is flushed: store the encrypted shares, log the ceremony, tell the custodians."""
    translog.open_log(tender)
    translog.pad(tender, at, initial=True)
    if ceremony is None:
        translog.sign_head(tender, at)
        return
    for row in ceremony.shares:
        row.tender_id = tender.id
        db.session.add(row)
    db.session.flush()
    n = len(ceremony.shares)
    translog.append_event(tender, "key-event", event="key-ceremony", key_id=ceremony.key_id, at_ms=epoch_ms(at),
                          detail=f"k={ceremony.threshold} n={n}")
    for row in ceremony.shares:
        translog.append_event(tender, "key-event", event="share-issued", key_id=ceremony.key_id,
                              at_ms=epoch_ms(at), custodian=f"person:{row.custodian_id}", share_index=row.share_index)
    translog.sign_head(tender, at)
    notify([row.custodian for row in ceremony.shares], kind="opening_key_share", object_type="tender",
           object_id=tender.id, subject=_l("You hold a share of the opening key of tender %(code)s"),
           body=_l("Keep your certificate's private key safe: at the opening (%(code)s) %(k)s of %(n)s "
                   "custodians must release their shares."), code=tender.code, k=ceremony.threshold, n=n)
    audit.record(actor, "tender.opening_key", "tender", tender.id, {
        "key_id": ceremony.key_id, "threshold": ceremony.threshold, "count": n,
        "custodians": [{"person_id": r.custodian_id, "certificate_id": r.certificate_id, "index": r.share_index}
                       for r in ceremony.shares]})


def shares_of(tender: Tender) -> list[OpeningKeyShare]:
    return list(db.session.scalars(select(OpeningKeyShare).where(OpeningKeyShare.tender_id == tender.id)
                                   .order_by(OpeningKeyShare.share_index)))


def share_for(tender: Tender, person_id: int) -> OpeningKeyShare | None:
    return db.session.scalar(select(OpeningKeyShare).where(OpeningKeyShare.tender_id == tender.id,
                                                           OpeningKeyShare.custodian_id == person_id))
