"""Sealed-bid pages (投标文件): sealing in the browser, the bidder's bids and receipts, the tender's log.

* ``/tenders/<id>/lots/<lot_id>/seal``: the bidder fills in the opening form (开标一览表) and picks its
  documents, or picks a bid ZIP made by ``ebid client build``, unlocks its signing key and seals in the
  browser (``ebid/static/seal/``, WebCrypto). The page sends no plaintext: only the envelope's ciphertext
  goes to the sealed-bid API (docs/bids-api.md), in resumable chunks; the signed receipt is checked in
  the browser.
* ``/my/bids``: the organisation's bids per lot, with each receipt downloadable as the bundle that
  ``ebid client verify-receipt`` reads, checked here against the stored log and again in the browser with
  fresh proofs from the public log endpoints.
* :func:`transparency_of` feeds the transparency section (透明日志) of the tender page: the opening key,
  and from the deadline on the final signed tree head, with how to check it independently.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from flask import render_template, request, send_file, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import login_required
from flask_wtf.csrf import generate_csrf
from sqlalchemy import or_, select

from bidding import translog
from bidding.bid_page_strings import bids_strings, seal_strings
from bidding.bids_schemas import BidSchema
from bidding.models import Lot, Tender, TenderStatus
from bidding.policy import require_bidder
from bidding.queries import get_tender
from bidding.receipts import log_key, receipt_key
from bidding.sealed_checks import max_bid_bytes
from bidding.sealed_closing import is_closed
from bidding.sealed_models import Bid, BidderCommitment
from bidding.sealed_queries import b64, closing_of, hexes, my_lots, sealing_parameters, signed
from bidding.submissions import MAX_CHUNK, current_bid, next_version, submitted
from bidding.view_support import acting_as, bp, choices_for, int_arg, viewer_orgs
from core.actor import Actor
from core.clock import as_utc, now
from core.db import db
from core.errors import NotFound
from core.identity.models import Certificate, CertificateSubject, Organisation, Role
from crypto.errors import CryptoError
from crypto.header import DEFAULT_SEGMENT_SIZE
from crypto.receipt import verify_receipt
from crypto.suites import SUITE_P256

BUNDLE_TYPE = "ebid/client-receipt/v1"  # the receipt file of `ebid client upload` (ebid/client/verify.py)
UPLOAD_CHUNK = 4 << 20


def _lot(tender: Tender, lot_id: int) -> Lot:
    lot = next((lot for lot in tender.lots if lot.id == lot_id), None)
    if lot is None:
        raise NotFound()
    return lot


def _ms(value: datetime | None) -> int | None:
    return int(as_utc(value).timestamp() * 1000) if value else None


def accepting_bids(tender: Tender) -> bool:
    """Published, not closed, and the platform clock before the deadline (as finalize will check)."""
    deadline = as_utc(tender.bid_deadline_at) if tender.bid_deadline_at else None
    return tender.status == TenderStatus.PUBLISHED and deadline is not None and now() < deadline \
        and not is_closed(tender)


def signing_certificates(actor: Actor) -> list[dict[str, Any]]:
    """The certificates whose keys may sign this actor's envelopes: its organisation's and its own."""
    stmt = select(Certificate).where(or_(
        Certificate.organisation_id == actor.organisation_id,
        (Certificate.subject_kind == CertificateSubject.PERSON) & (Certificate.person_id == actor.person_id)))
    at, out = now(), []
    for cert in db.session.scalars(stmt.order_by(Certificate.id)):
        public = x509.load_pem_x509_certificate(cert.pem.encode()).public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(public.curve, ec.SECP256R1):
            continue
        start, end = (f"{as_utc(cert.not_before):%Y-%m-%d}", f"{as_utc(cert.not_after):%Y-%m-%d}")
        reason = None
        if cert.revoked_at is not None:
            revoked = f"{as_utc(cert.revoked_at):%Y-%m-%d}"
            reason = _("revoked on %(date)s", date=revoked)
        elif not as_utc(cert.not_before) <= at <= as_utc(cert.not_after):
            reason = _("valid from %(start)s to %(end)s, not now", start=start, end=end)
        holder = _("organisation") if cert.subject_kind == CertificateSubject.ORGANISATION else _("personal")
        out.append({"key_id": SUITE_P256.key_id(public).hex(), "serial": cert.serial, "usable": reason is None,
                    "reason": reason or "", "not_after": end,
                    "label": _("%(holder)s certificate %(serial)s", holder=holder, serial=cert.serial[:16])})
    return out


def bidder_actor() -> Actor:
    """The bidder actor for ``?org=`` (else the person's first bidder organisation; the page offers a switch)."""
    chosen = int_arg(request.args.get("org"))
    choices = choices_for(Role.BIDDER)
    if chosen is None and choices:
        chosen = choices[0][1].id
    return acting_as((Role.BIDDER,), chosen)


@bp.route("/tenders/<int:tender_id>/lots/<int:lot_id>/seal")
@login_required
def seal(tender_id: int, lot_id: int):
    """Seal a bid for a lot in the browser and submit it (加密投标)."""
    tender = get_tender(tender_id, viewer_orgs())
    lot = _lot(tender, lot_id)
    actor = bidder_actor()
    require_bidder(actor, tender)
    organisation = db.session.get(Organisation, actor.organisation_id)
    params = sealing_parameters(tender)
    certificates = signing_certificates(actor)
    version = next_version(lot.id, organisation.id)
    at = now()
    config = {
        "tenderId": tender.id, "tenderCode": tender.code, "lotId": lot.id, "lotCode": lot.code,
        "bidder": organisation.uscc, "organisationId": organisation.id, "bidVersion": version,
        "keyMode": params["key_mode"],
        "recipients": {"tenderKey": params["recipients"]["tender_key"], "bidderKey": params["recipients"]["bidder_key"]},
        "openingKey": ({"keyId": tender.opening_key_id, "pem": tender.opening_public_key_pem}
                       if tender.opening_key_id else None),
        "segmentSize": DEFAULT_SEGMENT_SIZE, "maxEnvelopeBytes": max_bid_bytes(lot),
        "chunkSize": min(UPLOAD_CHUNK, MAX_CHUNK), "certificates": certificates, "csrfToken": generate_csrf(),
        "deadlineMs": _ms(tender.bid_deadline_at), "serverNowMs": _ms(at),
        "locale": "zh-CN" if getattr(get_locale(), "language", "zh") == "zh" else "en",
    }
    return render_template("bidding/seal.html", tender=tender, lot=lot, organisation=organisation,
                           accepting=accepting_bids(tender), version=version, server_now=at,
                           current=current_bid(lot.id, organisation.id), certificates=certificates,
                           config=config, strings=seal_strings(), choices=choices_for(Role.BIDDER),
                           params=params)


# --- my bids -------------------------------------------------------------------------------------------

def envelope_name(bid: Bid) -> str:
    return f"{bid.tender.code}-{bid.lot.code}-v{bid.version}.ebe"


def receipt_bundle(bid: Bid) -> dict[str, Any]:
    """The receipt of ``bid`` as the file ``ebid client upload`` writes (``ebid/client-receipt/v1``)."""
    result = submitted(bid)
    consistency = None
    if result.consistency_proof is not None:
        consistency = {"from_size": result.previous_head_size, "to_size": bid.head_size,
                       "proof": hexes(result.consistency_proof)}
    organisation = bid.organisation
    return {"type": BUNDLE_TYPE, "server": request.url_root.rstrip("/"), "tender_id": bid.tender_id,
            "lot_id": bid.lot_id, "organisation_id": bid.organisation_id, "tender_code": bid.tender.code,
            "lot_code": bid.lot.code, "bidder_uscc": organisation.uscc, "bid_version": bid.version,
            "envelope": {"path": envelope_name(bid), "sha256": bid.envelope_sha256, "size": bid.envelope_size},
            "receipt": signed(bid.receipt), "log_entry": b64(result.entry),
            "inclusion_proof": hexes(result.inclusion_proof), "consistency": consistency,
            "bidder_commitment": {"commitment": result.commitment.commitment, "salt": result.commitment.salt,
                                  "uscc": organisation.uscc},
            "bid": BidSchema().dump(bid)}


def server_check(bid: Bid) -> str | None:
    """None when the stored receipt verifies against the stored log, else what does not check out."""
    entry = translog.entry_at(bid.tender_id, bid.log_index)
    if entry is None:
        return _("The log has no entry %(index)s.", index=bid.log_index)
    try:
        verify_receipt(bid.receipt, receipt_key=receipt_key().public_key(), log_key=log_key().public_key(),
                       envelope_sha256=bytes.fromhex(bid.envelope_sha256), envelope_size=bid.envelope_size,
                       log_entry_bytes=entry.entry,
                       inclusion_proof=translog.inclusion_proof(bid.tender_id, bid.log_index, bid.head_size))
    except (CryptoError, ValueError) as exc:
        return str(exc)
    commitment = db.session.scalar(select(BidderCommitment).where(BidderCommitment.tender_id == bid.tender_id,
                                                                  BidderCommitment.organisation_id == bid.organisation_id))
    body = json.loads(bid.receipt)["body"]
    if commitment is None or translog.commitment_of(commitment.salt, bid.organisation.uscc) != body["bidder"]:
        return _("The receipt's bidder commitment is not your organisation's.")
    return None


@bp.route("/my/bids")
@login_required
def my_bids():
    """The organisation's sealed bids (我的投标) per lot: versions, receipts, checks, unfinished uploads."""
    actor = bidder_actor()
    lots = my_lots(actor)
    checks = {bid.id: server_check(bid) for item in lots for bid in item["history"]}
    tenders = {t.id: t for t in db.session.scalars(select(Tender).where(Tender.id.in_({i["tender_id"] for i in lots})))}
    return render_template("bidding/my_bids.html", lots=lots, checks=checks, tenders=tenders,
                           accepting={tid: accepting_bids(t) for tid, t in tenders.items()},
                           choices=choices_for(Role.BIDDER), acting_org=actor.organisation_id,
                           config={"organisationId": actor.organisation_id, "csrfToken": generate_csrf()},
                           strings=bids_strings())


@bp.route("/my/bids/<bid_id>/receipt.json")
@login_required
def receipt_file(bid_id: str):
    """Download a receipt bundle (回执) for ``ebid client verify-receipt``."""
    own = {org.id for _role, org in choices_for(Role.BIDDER)}
    bid = db.session.scalar(select(Bid).where(Bid.public_id == bid_id)) if bid_id.isalnum() else None
    if bid is None or bid.organisation_id not in own:
        raise NotFound()
    body = (json.dumps(receipt_bundle(bid), ensure_ascii=False, indent=2) + "\n").encode()
    return send_file(io.BytesIO(body), mimetype="application/json", as_attachment=True,
                     download_name=f"{envelope_name(bid)}.receipt.json", max_age=0)


# --- the tender page's transparency section -------------------------------------------------------------

@bp.app_template_global()
def transparency_of(tender: Tender) -> dict[str, Any]:
    """What the tender page shows of the log (透明日志): public from the deadline on, nothing before it."""
    final = translog.final_head(tender.id) if tender.status != TenderStatus.DRAFT else None
    head = None
    if final is not None:
        document = json.loads(final.document)
        head = {"tree_size": final.tree_size, "root_hash": final.root_hash, "key_id": document["key_id"],
                "signed_at": datetime.fromtimestamp(final.timestamp_ms / 1000, tz=UTC)}
    return {"opening_key_id": tender.opening_key_id, "opening_key_pem": tender.opening_public_key_pem,
            "final": head, "closing": closing_of(tender) if head else None,
            "head_url": url_for("bids_api.Head", tender_id=tender.id),
            "entries_url": url_for("bids_api.Entries", tender_id=tender.id),
            "keys_url": url_for("bids_api.Keys"), "server": request.url_root.rstrip("/")}
