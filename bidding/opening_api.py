"""JSON API of the online opening (不见面开标), blueprint ``opening_api`` under ``/api/opening``.

Thin views: build the actor (session cookie or bearer token, as the bids API), call the service, commit,
then drive the decrypting step for what was queued. Refusals that are themselves recorded (a wrong key or
share) are committed before the error is answered. The contract is in docs/opening.md.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from flask import request
from flask.views import MethodView
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_smorest import Blueprint

from bidding import opening, opening_decrypt, opening_draws, opening_process
from bidding.opening_decrypt import RecordedRefusal
from bidding.opening_handoff import handoff_check
from bidding.queries import get_tender, managed_organisation_ids
from bidding.sealed_models import Bid
from core.actor import Actor
from core.db import db
from core.errors import NotAuthenticated, NotFound, ValidationFailed
from core.identity.access import current_actor
from core.identity.models import Role
from core.storage import default_store
from crypto.envelope import read_header

blp = Blueprint("opening_api", __name__, url_prefix="/api/opening",
                description="Online opening (不见面开标): check-in, decryption, shares, draws, hand-off")


def _person() -> Any:
    if not current_user or not current_user.is_authenticated:
        raise NotAuthenticated()
    return current_user


def _tender(tender_id: int):
    return get_tender(tender_id, managed_organisation_ids(_person()))


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationFailed(_l("Send a JSON object."), code="json_required")
    return data


def _b64(data: dict[str, Any], name: str) -> bytes:
    try:
        return base64.b64decode(str(data.get(name) or ""), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed(_l("%(name)s must be base64."), code="invalid_base64",
                               fields={name: [_l("Give base64 bytes.")]}, name=name) from None


def _acting(role: Role | None) -> Any:
    _person()
    organisation_id = request.args.get("organisation_id", type=int)
    return current_actor(role, organisation_id) if role in (Role.BIDDER, Role.TENDERER, Role.AGENCY) \
        else current_actor(role)


def _commit_then(fn: Callable[[], Any]) -> Any:
    try:
        result = fn()
    except RecordedRefusal:
        db.session.commit()  # the refusal itself is on the record
        raise
    db.session.commit()
    return result


def _state(tender_id: int) -> dict[str, Any]:
    tender = _tender(tender_id)
    data = opening.state(tender, _person().id)
    db.session.commit()
    return data


@blp.route("/tenders/<int:tender_id>")
class State(MethodView):
    @blp.response(200)
    def get(self, tender_id: int):
        """The opening's state: phase, window, participants, check-ins, board, announcements, draws."""
        opening_process.advance(Actor.system(source="request"), _tender(tender_id).id)
        return _state(tender_id)


@blp.route("/tenders/<int:tender_id>/participants")
class Participants(MethodView):
    @blp.response(200)
    def post(self, tender_id: int):
        """Name the host and supervisors (tenderer or agency staff); optionally the window (15–60 minutes)."""
        data = _body()
        tender = _tender(tender_id)
        role = Role.AGENCY if tender.agency_id and _person().has_role(Role.AGENCY) else Role.TENDERER
        actor = current_actor(role, tender.agency_id if role == Role.AGENCY else tender.tenderer_id)
        _commit_then(lambda: opening.name_participants(
            actor, tender.id, host_id=int(data.get("host_id") or 0),
            supervisor_ids=[int(i) for i in data.get("supervisor_ids") or []],
            window_minutes=data.get("window_minutes")))
        return _state(tender_id)


@blp.route("/tenders/<int:tender_id>/checkin")
class CheckInView(MethodView):
    @blp.response(200)
    def post(self, tender_id: int):
        """Check in for your organisation (签到)."""
        actor = _acting(Role.BIDDER)
        row = _commit_then(lambda: opening.check_in(actor, _tender(tender_id).id, remote_addr=request.remote_addr))
        return opening.checkin_payload(row)


def _host_action(tender_id: int, fn: Callable[[Any, int], Any]) -> dict[str, Any]:
    actor = current_actor(None)
    tender = _tender(tender_id)
    _commit_then(lambda: fn(actor, tender.id))
    return _state(tender_id)


@blp.route("/tenders/<int:tender_id>/start")
class Start(MethodView):
    @blp.response(200)
    def post(self, tender_id: int):
        """The host starts the decryption window."""
        return _host_action(tender_id, opening.start_decryption)


@blp.route("/tenders/<int:tender_id>/record")
class Record(MethodView):
    @blp.response(200)
    def post(self, tender_id: int):
        """The host moves on to the record (唱标) once decryption is over."""
        return _host_action(tender_id, opening.enter_record)


def _own_bid(tender_id: int, public_id: str) -> Bid:
    actor = _acting(Role.BIDDER)
    bid = db.session.query(Bid).filter_by(tender_id=tender_id, public_id=public_id).one_or_none()
    if bid is None or bid.organisation_id != actor.organisation_id:
        raise NotFound(_l("Your organisation has no bid %(bid)s in this tender."), code="bid_not_found", bid=public_id)
    return bid


@blp.route("/tenders/<int:tender_id>/bids/<public_id>/header")
class Header(MethodView):
    @blp.response(200)
    def get(self, tender_id: int, public_id: str):
        """The envelope header of your own bid, to unwrap the content key locally."""
        bid = _own_bid(_tender(tender_id).id, public_id)
        with default_store().open(bid.envelope_sha256) as fh:
            header = read_header(fh)
        return {"bid": bid.public_id, "header": base64.b64encode(header.raw).decode(),
                "key_mode": header.key_mode, "envelope_sha256": bid.envelope_sha256}


@blp.route("/tenders/<int:tender_id>/bids/<public_id>/key")
class Key(MethodView):
    @blp.response(200)
    def post(self, tender_id: int, public_id: str):
        """Send the content key you unwrapped locally (only the key; your private key never leaves)."""
        key = _b64(_body(), "content_key")
        actor = _acting(Role.BIDDER)
        tender = _tender(tender_id)
        row = _commit_then(lambda: opening_decrypt.submit_content_key(actor, tender.id, public_id, key))
        opening_process.process_pending(tender.id)
        db.session.refresh(row)
        return opening.board_row(row)


@blp.route("/tenders/<int:tender_id>/share")
class Share(MethodView):
    @blp.response(200)
    def post(self, tender_id: int):
        """A key custodian releases its decrypted share of the opening key."""
        share = _b64(_body(), "share")
        actor = current_actor(None)
        tender = _tender(tender_id)
        result = _commit_then(lambda: opening_decrypt.release_share(actor, tender.id, share))
        opening_process.process_pending(tender.id)
        return result


@blp.route("/tenders/<int:tender_id>/failures/<int:bid_opening_id>")
class Failure(MethodView):
    @blp.response(200)
    def post(self, tender_id: int, bid_opening_id: int):
        """Host or supervisor names a failed bid's cause with evidence (both must agree)."""
        data = _body()
        actor = current_actor(None)
        tender = _tender(tender_id)
        row = _commit_then(lambda: opening_decrypt.decide_failure(
            actor, tender.id, bid_opening_id, cause=str(data.get("cause") or ""),
            reason=str(data.get("reason") or ""), evidence=str(data.get("evidence") or "")))
        return opening.board_row(row)


@blp.route("/tenders/<int:tender_id>/draws/<name>/<any(commit, reveal):step>")
class Draw(MethodView):
    @blp.response(200)
    def post(self, tender_id: int, name: str, step: str):
        """Commit a seed for a random parameter (before), or draw it (reveal)."""
        actor = current_actor(None)
        tender = _tender(tender_id)
        fn = opening_draws.commit_draw if step == "commit" else opening_draws.reveal_draw
        row = _commit_then(lambda: fn(actor, tender.id, name))
        return opening.draw_payload(row)


@blp.route("/tenders/<int:tender_id>/draws/<name>/verify")
class DrawVerify(MethodView):
    @blp.response(200)
    def get(self, tender_id: int, name: str):
        """Recompute a draw from the transparency log."""
        check = opening_draws.verify_draw(_tender(tender_id).id, name)
        return {"ok": check.ok, "name": check.name, "result": check.result, "message": check.message}


@blp.route("/tenders/<int:tender_id>/handoff")
class Handoff(MethodView):
    @blp.response(200)
    def get(self, tender_id: int):
        """The hand-off check: the bids opened equal the bids in the final tree head."""
        return handoff_check(_tender(tender_id).id).to_dict()


@blp.route("/tenders/<int:tender_id>/my-bids")
class MyBids(MethodView):
    @blp.response(200)
    def get(self, tender_id: int):
        """Your organisation's bids in this opening (public id, lot, status), to decrypt them."""
        actor = _acting(Role.BIDDER)
        tender = _tender(tender_id)
        opening.ensure_session(tender)
        rows = [r for r in opening.opened_bids(tender.id) if r.organisation_id == actor.organisation_id]
        db.session.commit()
        return [{"bid": r.bid.public_id, "lot": r.lot.code, "lot_id": r.lot_id, **opening.board_row(r)} for r in rows]
