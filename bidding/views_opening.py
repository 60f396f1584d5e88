"""The opening hall page (开标大厅) for bidders, the host, supervisors and staff; the state comes over Socket.IO.

The page is a shell: ``ebid/static/hall/hall.js`` connects to the ``/hall`` namespace, joins the tender's
room and renders the state and the live events. A bidder decrypts its own bid in the page: the key file
is read locally (``ebid/static/seal/keyfile.js``), the content key unwrapped with WebCrypto
(``ebid/static/seal/unwrap.js``), and only that key is sent to the opening API.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from flask import Response, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf.csrf import generate_csrf
from sqlalchemy import select

from bidding import opening, record_service
from bidding.hall_queries import access_for
from bidding.hall_record import record_panel
from bidding.hall_state import BIDDER
from bidding.models import Lot, Tender, TenderStatus
from bidding.queries import get_tender
from bidding.record_pdf import FIELD_OF_ROLE
from bidding.sealed_models import Bid
from bidding.view_support import bp, int_arg, viewer_orgs
from core.clock import as_utc, now
from core.db import db
from core.errors import Forbidden
from core.identity.ca import load_ca_certificate

HALL_STATUSES = frozenset({TenderStatus.OPENING, TenderStatus.EVALUATION, TenderStatus.PUBLICITY,
                           TenderStatus.AWARDED, TenderStatus.FAILED})


@bp.app_template_global("hall_open")
def hall_open(tender: Tender) -> bool:
    """Whether the tender's pages link to its hall: from the deadline on (check-in, opening, the record)."""
    deadline = as_utc(tender.bid_deadline_at) if tender.bid_deadline_at else None
    return tender.status in HALL_STATUSES or (tender.status == TenderStatus.PUBLISHED and deadline is not None
                                              and deadline <= now())


def hall_strings() -> dict[str, str]:
    """The sentences and labels hall.js shows, in the reader's language (the script holds no text)."""
    return {
        "phase_waiting": _("Waiting for the bid deadline"), "phase_checkin": _("Check-in (签到)"),
        "phase_decrypting": _("Decryption window (解密)"), "phase_decrypted": _("Decryption over"),
        "phase_record": _("Opening record (唱标)"), "phase_closed": _("Opening closed"),
        "phase_failed": _("Failed: fewer than three bids (流标)"), "phase_cancelled": _("Cancelled"),
        "countdown_deadline": _("Until the bid deadline"), "countdown_decryption": _("Decryption time left (剩余时间)"),
        "status_pending": _("pending"), "status_decrypted": _("decrypted"), "status_failed": _("failed"),
        "role_host": _("host (主持人)"), "role_supervisor": _("supervisor (监督人)"), "role_staff": _("tenderer/agency"),
        "role_custodian": _("key custodian"), "role_bidder": _("bidder"),
        "cause_bidder": _("bidder"), "cause_platform": _("platform"), "cause_ca": _("CA"),
        "cause_network": _("network"), "cause_unknown": _("unknown"),
        "outcome_revoked": _("deemed revoked (撤销)"), "outcome_withdrawn": _("deemed withdrawn (撤回)"),
        "cause_pending": _("cause to be decided by host and supervisor"),
        "connected": _("Connected: live"), "disconnected": _("Connection lost: reconnecting…"),
        "refused": _("The hall refused the connection: %(reason)s"),
        "nobody": _("Nobody else is here yet."), "no_bids": _("The board appears at the bid deadline."),
        "no_announcements": _("No announcements yet."), "no_checkins": _("No check-ins yet."),
        "connections": _("%(n)s connections"),
        "checked_in": _("Checked in."),
        "decrypt_choose_key": _("Choose your decryption key file first."),
        "decrypt_reading": _("Reading the key file…"), "decrypt_unwrapping": _("Unwrapping the content key…"),
        "decrypt_sending": _("Sending the content key (only the key, never your private key)…"),
        "decrypt_done": _("The platform accepted the key; the board shows the result."),
        "not_a_recipient": _("This key file is not the one the bid was sealed for; choose the bidder key file "
                             "you sealed with."),
        "unwrap_failed": _("The key file does not unwrap the bid's key: the file or the passphrase is wrong."),
        "bad_header": _("The platform sent an envelope header this page cannot read; use 'ebid client decrypt'."),
        "passphrase_needed": _("This key file is encrypted: enter its passphrase."),
        "wrong_passphrase": _("The passphrase does not open this key file."),
        "key_file": _("The file is not a usable private key (%(reason)s)."),
        "network": _("The server cannot be reached; check the connection and try again."),
        "generic": _("Something went wrong: %(reason)s"),
        "no_draws": _("No random parameter committed yet."),
        "method_bidder": _("decrypted with the bidder's key"),
        "method_custodians": _("decrypted by the key custodians"),
        "method_both": _("decrypted with both halves (double envelope)"),
        "record_choose_pdf": _("Choose the signed PDF first."),
        "draw_seed": _("seed"), "draw_commitment": _("commitment"), "draw_pending": _("committed, not drawn yet"),
    }


def _own_bids(tender: Tender, organisation_id: int | None) -> list[dict[str, Any]]:
    if organisation_id is None:
        return []
    rows = db.session.execute(select(Bid.public_id, Lot.code).join(Lot, Lot.id == Bid.lot_id).where(
        Bid.tender_id == tender.id, Bid.organisation_id == organisation_id, Bid.is_current.is_(True))
        .order_by(Lot.number)).all()
    return [{"publicId": public_id, "lot": code} for public_id, code in rows]


@bp.route("/tenders/<int:tender_id>/hall")
@login_required
def hall(tender_id: int):
    """The opening hall of a tender: countdown, presence, the live board, announcements, draws, actions."""
    tender, access = _hall_access(tender_id)
    own = _own_bids(tender, access.organisation_id) if access.role == BIDDER else []
    parameters = sorted(((tender.evaluation_method or {}).get("random_parameters") or {}).keys())
    config = {
        "tenderId": tender.id, "namespace": "/hall", "csrfToken": generate_csrf(), "role": access.role,
        "organisationId": access.organisation_id, "actions": sorted(access.actions), "ownBids": own,
        "apiBase": f"/api/opening/tenders/{tender.id}", "serverNowMs": int(now().timestamp() * 1000),
        "socketPath": "/socket.io", "parameters": parameters,
        "locale": "zh-CN" if getattr(get_locale(), "language", "zh") == "zh" else "en",
    }
    panel = record_panel(tender, access.role, current_user.id, access.organisation_id)
    db.session.commit()  # a confirmation window found due was closed
    return render_template("bidding/hall.html", tender=tender, access=access,
                           acting_org=access.organisation_id, config=config, strings=hall_strings(),
                           own_bids=own, parameters=parameters,
                           vendor=url_for("static", filename="vendor/socket.io/socket.io.min.js"), **panel)


def _hall_access(tender_id: int):
    tender = get_tender(tender_id, viewer_orgs())
    access = access_for(tender, current_user._get_current_object(), int_arg(request.args.get("org")))
    if access is None:
        raise Forbidden(_("The opening hall of %(tender)s is open to the bidders with a bid in it, the tenderer's "
                          "and agency's staff, the host and the supervisors.", tender=tender.code), code="hall_refused")
    return tender, access


@bp.route("/tenders/<int:tender_id>/hall/record")
@login_required
def hall_record(tender_id: int):
    """The record part of the hall page alone (the page reloads it on every ``hall.record`` event)."""
    tender, access = _hall_access(tender_id)
    panel = record_panel(tender, access.role, current_user.id, access.organisation_id)
    db.session.commit()
    return render_template("bidding/record_part.html", **panel)


@bp.route("/tenders/<int:tender_id>/hall/record/<any('revision.pdf', 'platform-ca.pem'):name>")
@login_required
def hall_record_file(tender_id: int, name: str):
    """For the signers: the record's current revision to sign, and the platform CA certificate (--chain)."""
    tender, _access = _hall_access(tender_id)
    if name == "platform-ca.pem":
        pem = load_ca_certificate().public_bytes(serialization.Encoding.PEM)
        return Response(pem, mimetype="application/x-pem-file",
                        headers={"Content-Disposition": 'attachment; filename="platform-ca.pem"'})
    if opening.role_of(tender, current_user.id) not in FIELD_OF_ROLE:
        raise Forbidden(_("Only the opening's host and supervisors sign the record."), code="not_a_signer")
    record = record_service.tick(tender.id)
    db.session.commit()
    return Response(record_service.current_pdf(record), mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="opening-record-{tender.code}-v{record.version}.pdf"',
        "X-Record-SHA256": record.pdf_sha256 or ""})
