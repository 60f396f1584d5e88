"""Decryption at the opening (解密): bidders' content keys, custodians' shares, the window's end, failures.

* Bidder: unwraps the content key on its own machine (its private key never leaves) and sends only the
  key; it is checked against the stored envelope (first segment's GCM tag) and queued for
  :mod:`bidding.opening_process`, which decrypts, verifies the signature and reads ``bid.json``.
  In double-envelope mode the bidder sends its half; the custodians' half completes it (XOR).
* Custodians: each decrypts its own share locally and releases it. A share is checked at once against
  the SHA-256 recorded at the key ceremony. With k shares (and, in ``bidder_then_custodians`` mode,
  after the window) the opening key is rebuilt in memory, checked against the published public key,
  used to unwrap the content keys of the bids still pending, and dropped; released shares are cleared.
* The window's end: bids without a key fall back to the custodians where the mode allows, or fail.
  Host and supervisor each name a failure's cause with evidence; when both agree it is decided, with
  the legal outcome of 20号令 §31: cause bidder → revoked (撤销), any other cause → withdrawn (撤回).

Refusals (a wrong key or share, a share from a non-custodian) are kept: :class:`RecordedRefusal` tells
the API to commit the record before answering with the error. Keys and shares never reach the audit trail.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography.hazmat.primitives import serialization
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from bidding import hall_events
from bidding.errors import NotABidder
from bidding.models import DecryptionMode, Tender
from bidding.opening import OpeningRefused, _open_session, announce, board_row, require_role, role_of
from bidding.opening_models import (
    BidOpening,
    BidOpeningStatus,
    DecryptMethod,
    FailureCause,
    LegalOutcome,
    OpeningPhase,
    OpeningSession,
    ParticipantRole,
    ShareRelease,
)
from bidding.sealed_models import Bid, OpeningKeyShare
from core import audit
from core.actor import Actor
from core.clock import as_utc, now
from core.db import db
from core.errors import Forbidden, NotFound, ValidationFailed
from core.i18n import N_
from core.storage import default_store
from crypto import envelope as E
from crypto import shamir
from crypto.errors import CryptoError, ShareError, WrongContentKey


class RecordedRefusal(ValidationFailed):
    """A refusal that is itself recorded (audit + announcement): the caller commits, then reports it."""

    code = "refused"


def _refuse(actor: Actor, subject: Tender, code: str, message: Any, audit_detail: dict[str, Any],
            **params: Any) -> RecordedRefusal:
    audit.record(actor, f"opening.refused.{code}", "tender", subject.id, audit_detail)
    announce(subject.id, "refused", N_("Refused (%(code)s): %(who)s."), code=code, who=actor.name)
    return RecordedRefusal(message, code=code, **params)


def fallback_allowed(tender: Tender) -> bool:
    """Whether the custodians may open a bid its bidder did not decrypt within the window."""
    return bool(tender.opening_key_id) and tender.decryption_mode in (DecryptionMode.BIDDER,
                                                                       DecryptionMode.BIDDER_THEN_CUSTODIANS)


def _row_for_bid(tender: Tender, bid_public_id: str) -> tuple[BidOpening, Bid]:
    found = db.session.execute(select(BidOpening, Bid).join(Bid, Bid.id == BidOpening.bid_id)
                               .where(BidOpening.tender_id == tender.id, Bid.public_id == bid_public_id)).first()
    if found is None:
        raise NotFound(_l("Tender %(tender)s opens no bid %(bid)s."), code="bid_not_opened", tender=tender.code,
                       bid=bid_public_id)
    return found[0], found[1]


def _envelope(bid: Bid):
    return default_store().open(bid.envelope_sha256)


def _check_key(bid: Bid, key: bytes) -> None:
    with _envelope(bid) as fh:
        E.check_content_key(fh, key)


def _queue(row: BidOpening, key: bytes, method: DecryptMethod) -> None:
    row.pending_key, row.pending_method = bytes(key), method
    row.bidder_part = row.tender_part = None
    row.error = None


def submit_content_key(actor: Actor, tender_id: int, bid_public_id: str, content_key: bytes) -> BidOpening:
    """A bidder sends the content key it unwrapped locally (its half, in double-envelope mode)."""
    tender, session = _open_session(tender_id)
    if actor.organisation_id is None or actor.role != "bidder":
        raise NotABidder()
    row, bid = _row_for_bid(tender, bid_public_id)
    if row.organisation_id != actor.organisation_id:
        raise Forbidden(_l("This is not your organisation's bid."), code="not_your_bid")
    if tender.decryption_mode == DecryptionMode.CUSTODIANS:
        raise OpeningRefused(_l("In this tender the key custodians decrypt the bids; bidders send no key."),
                             code="custodians_decrypt")
    if row.status != BidOpeningStatus.PENDING or row.pending_key is not None:
        return row  # already decrypted, failed, or queued: sending the key again changes nothing
    at = now()
    if session.phase != OpeningPhase.DECRYPTING or at >= as_utc(session.decryption_deadline):
        raise OpeningRefused(_l("Keys are accepted only during the decryption window (now: phase %(phase)s)."),
                             code="window_closed", phase=session.phase.value)
    row.attempts += 1
    row.key_sent_by_id = actor.person_id
    if tender.decryption_mode == DecryptionMode.DOUBLE_ENVELOPE:
        row.bidder_part = bytes(content_key)
        if row.tender_part is not None and not _complete_split(actor, tender, row, bid):
            db.session.flush()
            raise _refuse(actor, tender, "wrong_content_key", _l(
                "Your half of the content key does not open bid %(bid)s together with the custodians' half: "
                "unwrap it again with the key the bid was sealed for, and send it before the window ends."),
                {"bid": bid.public_id, "attempt": row.attempts}, bid=bid.public_id)
    else:
        try:
            _check_key(bid, content_key)
        except (WrongContentKey, CryptoError):
            row.error = "wrong content key"
            db.session.flush()
            raise _refuse(actor, tender, "wrong_content_key", _l(
                "The content key does not open bid %(bid)s: unwrap it again with the private key the bid was "
                "sealed for, and send it before the window ends."),
                {"bid": bid.public_id, "attempt": row.attempts}, bid=bid.public_id) from None
        _queue(row, content_key, DecryptMethod.BIDDER)
    db.session.flush()
    audit.record(actor, "opening.key_accepted", "bid", bid.id, {"tender_id": tender.id, "attempt": row.attempts,
                                                                  "half": row.pending_key is None})
    hall_events.emit(tender.id, "hall.board", board_row(row))
    return row


def _complete_split(actor: Actor, tender: Tender, row: BidOpening, bid: Bid) -> bool:
    """Double envelope: XOR the two halves and check; clear the bidder's half when it does not fit."""
    key = bytes(a ^ b for a, b in zip(row.tender_part, row.bidder_part, strict=True)) \
        if len(row.tender_part) == len(row.bidder_part) else b""
    try:
        _check_key(bid, key)
    except (WrongContentKey, CryptoError):
        row.bidder_part, row.error = None, "the two halves do not open the envelope"
        return False
    _queue(row, key, DecryptMethod.BOTH)
    return True


# --- custodians ------------------------------------------------------------------------------------------

def release_share(actor: Actor, tender_id: int, share: bytes) -> dict[str, Any]:
    """A custodian releases its decrypted share; the key is rebuilt when enough are in and it is time."""
    tender, session = _open_session(tender_id)
    mine = db.session.scalar(select(OpeningKeyShare).where(OpeningKeyShare.tender_id == tender.id,
                                                           OpeningKeyShare.custodian_id == actor.person_id))
    if mine is None:
        db.session.flush()
        raise _refuse(actor, tender, "not_a_custodian", _l(
            "You are not a key custodian of tender %(tender)s: your share is refused and the opening goes on."),
            {"person_id": actor.person_id}, tender=tender.code)
    if session.phase not in (OpeningPhase.DECRYPTING, OpeningPhase.DECRYPTED) or session.key_rebuilt_at:
        raise OpeningRefused(_l("Shares are taken only while bids are being decrypted and the key is not yet "
                                "rebuilt (phase %(phase)s)."), code="not_taking_shares", phase=session.phase.value)
    try:
        parsed = shamir.Share.from_bytes(share)
    except ShareError:
        parsed = None
    expected = mine.share_sha256
    wrong = parsed is None or parsed.index != mine.share_index or parsed.key_id.hex() != tender.opening_key_id \
        or (expected is not None and hashlib.sha256(parsed.to_bytes()).hexdigest() != expected)
    if wrong:
        db.session.flush()
        raise _refuse(actor, tender, "wrong_share", _l(
            "This is not your share %(index)s of the opening key of tender %(tender)s: decrypt the encrypted share "
            "the platform holds for you with your own certificate key and release that."),
            {"share_index": mine.share_index}, index=mine.share_index, tender=tender.code)
    release = db.session.scalar(select(ShareRelease).where(ShareRelease.tender_id == tender.id,
                                                           ShareRelease.custodian_id == actor.person_id))
    if release is None:
        db.session.add(ShareRelease(tender_id=tender.id, custodian_id=actor.person_id, share_index=mine.share_index,
                                    share=parsed.to_bytes(), released_at=now()))
        db.session.flush()
        audit.record(actor, "opening.share_released", "tender", tender.id, {"share_index": mine.share_index})
        announce(tender.id, "share", N_("Custodian %(name)s released share %(index)s."), name=actor.name,
                 index=mine.share_index)
    if session.window_closed_at is None and session.decryption_deadline is not None \
            and now() >= as_utc(session.decryption_deadline):
        close_window(actor, tender.id)  # the window is over even if the scheduler has not said so yet
    rebuilt = try_rebuild(actor, tender, session)
    return {"share_index": mine.share_index, "released": _released_count(tender.id), "threshold": mine.threshold,
            "key_rebuilt": rebuilt or session.key_rebuilt_at is not None}


def _released_count(tender_id: int) -> int:
    return len(db.session.scalars(select(ShareRelease.id).where(ShareRelease.tender_id == tender_id)).all())


def _custodians_due(tender: Tender, session: OpeningSession) -> bool:
    if tender.decryption_mode in (DecryptionMode.CUSTODIANS, DecryptionMode.DOUBLE_ENVELOPE):
        return True
    return session.window_closed_at is not None and fallback_allowed(tender)


def try_rebuild(actor: Actor, tender: Tender, session: OpeningSession) -> bool:
    """Rebuild the opening key from k released shares when it is time; unwrap the pending bids' keys; wipe."""
    if session.key_rebuilt_at is not None or not _custodians_due(tender, session):
        return False
    releases = list(db.session.scalars(select(ShareRelease).where(ShareRelease.tender_id == tender.id,
                                                                   ShareRelease.share.is_not(None))))
    shares = [bytearray(r.share) for r in releases]
    if not shares or len(shares) < shares_needed(tender):
        return False
    public = serialization.load_pem_public_key(tender.opening_public_key_pem.encode())
    try:
        result = shamir.combine_detailed([bytes(s) for s in shares], public)
    except ShareError as exc:
        audit.record(actor, "opening.key_rebuild_failed", "tender", tender.id, {"reason": str(exc)})
        announce(tender.id, "key", N_("The released shares do not rebuild the opening key; more shares are needed."))
        return False
    private = result.private_key
    try:
        opened = _unwrap_pending(actor, tender, private)
    finally:
        del private, result  # the rebuilt key lives only for the unwrapping above
        for s in shares:
            s[:] = bytes(len(s))
    for r in releases:
        r.share, r.used = None, True
    session.key_rebuilt_at = now()
    db.session.flush()
    audit.record(actor, "opening.key_rebuilt", "tender", tender.id,
                 {"shares": sorted(r.share_index for r in releases), "bids_unwrapped": opened})
    announce(tender.id, "key", N_("The opening key was rebuilt from %(n)s shares, checked against the published key, "
             "used for %(bids)s bid(s) and wiped."), n=len(releases), bids=opened)
    return True


def shares_needed(tender: Tender) -> int:
    row = db.session.scalar(select(OpeningKeyShare).where(OpeningKeyShare.tender_id == tender.id).limit(1))
    return row.threshold if row else 2


def _unwrap_pending(actor: Actor, tender: Tender, private: Any) -> int:
    rows = db.session.execute(select(BidOpening, Bid).join(Bid, Bid.id == BidOpening.bid_id).where(
        BidOpening.tender_id == tender.id, BidOpening.status == BidOpeningStatus.PENDING,
        BidOpening.pending_key.is_(None)).order_by(BidOpening.id)).all()
    done = 0
    for row, bid in rows:
        try:
            with _envelope(bid) as fh:
                header = E.read_header(fh)
            _role, part = E.unwrap_key_part(header, private)
            if header.key_mode == E.KEY_MODE_SPLIT:
                row.tender_part = part
                if row.bidder_part is not None and not _complete_split(actor, tender, row, bid):
                    announce(tender.id, "key", N_("Bid of %(bidder)s: the bidder's half does not fit; it may send it "
                             "again."), bidder=row.organisation.name)
            else:
                _check_key(bid, part)
                _queue(row, part, DecryptMethod.CUSTODIANS)
            done += 1
        except CryptoError as exc:
            row.error = f"custodian unwrap failed: {exc}"
            audit.record(actor, "opening.unwrap_failed", "bid", bid.id, {"reason": str(exc)})
            announce(tender.id, "key", N_("The opening key does not open the bid of %(bidder)s: %(reason)s"),
                     bidder=row.organisation.name, reason=str(exc))
        hall_events.emit(tender.id, "hall.board", board_row(row))
    return done


# --- the window's end, failures -----------------------------------------------------------------------------

def close_window(actor: Actor, tender_id: int) -> int:
    """At the window's end: fall back to the custodians where allowed, else fail the bids; return failures."""
    tender, session = _open_session(tender_id)
    if session.phase != OpeningPhase.DECRYPTING or session.window_closed_at is not None \
            or now() < as_utc(session.decryption_deadline):
        return 0
    session.window_closed_at = now()
    waiting = list(db.session.scalars(select(BidOpening).where(
        BidOpening.tender_id == tender.id, BidOpening.status == BidOpeningStatus.PENDING,
        BidOpening.pending_key.is_(None)).order_by(BidOpening.id)))
    custodians_open = tender.decryption_mode == DecryptionMode.CUSTODIANS or fallback_allowed(tender)
    failed = 0
    for row in waiting:
        if custodians_open and row.bidder_part is None and tender.decryption_mode != DecryptionMode.DOUBLE_ENVELOPE:
            continue
        if tender.decryption_mode == DecryptionMode.DOUBLE_ENVELOPE and row.bidder_part is not None:
            continue  # the bidder did its part; the custodians' half is still to come
        mark_failed(row, "not decrypted by the bidder within the decryption window")
        failed += 1
    db.session.flush()
    audit.record(actor, "opening.window_closed", "tender", tender.id,
                 {"failed": failed, "fallback": len(waiting) - failed})
    if len(waiting) > failed:
        announce(tender.id, "fallback", N_("The window has ended: the key custodians now open %(n)s bid(s)."),
                 n=len(waiting) - failed)
    try_rebuild(actor, tender, session)
    return failed


def mark_failed(row: BidOpening, error: str) -> None:
    """Fail a bid's decryption (its cause is decided later by host and supervisor); clear any key."""
    row.status, row.failed_at, row.error = BidOpeningStatus.FAILED, now(), error
    row.pending_key = row.bidder_part = row.tender_part = None
    row.pending_method = None
    announce(row.tender_id, "failed", N_("The bid of %(bidder)s could not be decrypted: %(error)s"),
             bidder=row.organisation.name, error=error)
    hall_events.emit(row.tender_id, "hall.board", board_row(row))


def legal_outcome(cause: FailureCause) -> LegalOutcome:
    """20号令 §31: a failure caused by the bidder is a revocation (撤销); any other, a withdrawal (撤回)."""
    return LegalOutcome.REVOKED if cause == FailureCause.BIDDER else LegalOutcome.WITHDRAWN


def decide_failure(actor: Actor, tender_id: int, bid_opening_id: int, *, cause: str, reason: str,
                   evidence: str) -> BidOpening:
    """Host or supervisor names a failed bid's cause with evidence; decided when both name the same cause."""
    tender, _session = _open_session(tender_id)
    role = role_of(tender, actor.person_id)
    if role not in (ParticipantRole.HOST.value, ParticipantRole.SUPERVISOR.value):
        require_role(actor, tender, ParticipantRole.HOST)
    row = db.session.get(BidOpening, bid_opening_id)
    if row is None or row.tender_id != tender.id:
        raise NotFound(_l("No such bid in this opening."), code="bid_not_opened")
    if row.status != BidOpeningStatus.FAILED:
        raise OpeningRefused(_l("Only a bid whose decryption failed gets a cause."), code="not_failed")
    if row.cause_decided_at is not None:
        raise OpeningRefused(_l("The cause of this failure was already decided: %(cause)s."), code="cause_decided",
                             cause=row.failure_cause.value)
    try:
        chosen = FailureCause(cause)
    except ValueError:
        raise ValidationFailed(_l("The cause is one of: bidder, platform, ca, network, unknown."),
                               code="invalid_cause", fields={"cause": [_l("Choose a listed cause.")]}) from None
    reason, evidence = (reason or "").strip(), (evidence or "").strip()
    if not reason or not evidence:
        raise ValidationFailed(_l("Give the reason and the evidence for the cause."), code="evidence_required",
                               fields={"evidence": [_l("Describe the evidence (logs, screenshots, statements).")]})
    votes = dict(row.cause_votes or {})
    votes[role] = {"cause": chosen.value, "reason": reason, "evidence": evidence, "person_id": actor.person_id,
                   "at": now().isoformat()}
    row.cause_votes = votes
    host, supervisor = votes.get("host"), votes.get("supervisor")
    decided = host is not None and supervisor is not None and host["cause"] == supervisor["cause"]
    if decided:
        row.failure_cause, row.legal_outcome, row.cause_decided_at = chosen, legal_outcome(chosen), now()
        row.failure_reason, row.failure_evidence = host["reason"], f"{host['evidence']}\n{supervisor['evidence']}"
    db.session.flush()
    audit.record(actor, "opening.failure_cause", "bid", row.bid_id,
                 {"role": role, "cause": chosen.value, "reason": reason, "evidence": evidence, "decided": decided})
    if decided:
        announce(tender.id, "cause", N_("Decided by host and supervisor: the bid of %(bidder)s failed by cause %(cause)s "
                 "(%(outcome)s)."), bidder=row.organisation.name, cause=chosen.value, outcome=row.legal_outcome.value)
    elif host and supervisor:
        announce(tender.id, "cause", N_("Host and supervisor name different causes for the bid of %(bidder)s; both must "
                 "agree."), bidder=row.organisation.name)
    hall_events.emit(tender.id, "hall.board", board_row(row))
    return row
