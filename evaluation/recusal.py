"""Who sits on the committee: invitations, answers, replacement by alternates, sign-in and recusal (回避).

* Drawn members are invited (a notification in the expert's language); they accept or decline (with a
  reason). A decline calls the next alternate: first of the same specialty, then any other, in draw
  order. With no alternate left the request becomes SHORT and a manager runs a top-up draw (补抽).
  When every expert seat has accepted, the request is COMPLETE and the waiting alternates are released
  (a released alternate is still called, in order, if a seat opens again).
* Once the evaluation has started (its :class:`~evaluation.room_models.Evaluation` row exists), an
  accepted member signs in (签到): employer and declared avoidance units are checked against the
  bidders' USCCs; a match recuses the member automatically (the reasons kept) and calls the next
  alternate; otherwise the member signs the declaration (回避声明/承诺书): with their platform
  certificate's key (ECDSA P-256 over the UTF-8 text) or, without a certificate, by typing their name.
* A member may declare a conflict at any time (-> RECUSED, replaced).

Each step is audited and appended to the tender's log (kind ``committee``, expert codes only).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from bidding import translog
from bidding.models import Tender
from bidding.receipts import epoch_ms
from bidding.sealed_checks import lock_tender
from core import audit
from core.actor import Actor
from core.clock import beijing, now
from core.db import db
from core.errors import NotFound, ValidationFailed
from core.identity.ca import CertificateRefused, verify_certificate
from core.identity.models import Certificate, Organisation, Person, Role
from core.notifications import members as staff_of
from core.notifications import notify
from core.realtime import publish
from core.realtime import room as room_of
from crypto import keys
from evaluation import draw_rules as R
from evaluation.draw_errors import NotYourInvitation, SignInRefused
from evaluation.pool_models import CommitteeMember, DrawRequest, DrawStatus, MemberStatus
from evaluation.room_flow import members_changed, seat_count
from evaluation.room_models import Evaluation

STATUS_EVENT = "draw.status"
CALLABLE = (MemberStatus.WAITING, MemberStatus.RELEASED)


def draw_room(tender_id: int) -> str:
    return room_of("draw", tender_id)


def status_counts(request: DrawRequest) -> dict[str, int]:
    counts = {s.value: 0 for s in MemberStatus}
    for m in request.members:
        counts[m.status.value] += 1
    return counts


def publish_status(request: DrawRequest) -> None:
    """Tell the draw status page (counts and statuses only: names stay sealed)."""
    publish(STATUS_EVENT, {"tender_id": request.tender_id, "status": request.status.value,
                           "counts": status_counts(request)}, room=draw_room(request.tender_id))


def _log(tender: Tender, event: str, member: CommitteeMember, **fields: Any) -> int:
    return translog.append_event(tender, "committee", event=event, member=member.expert.code,
                                 at_ms=epoch_ms(now()), **fields)


def invite(actor: Actor, member: CommitteeMember) -> None:
    """Invite ``member`` (a drawn member or a called alternate) and notify the expert."""
    member.status, member.invited_at = MemberStatus.INVITED, now()
    tender = db.session.get(Tender, member.tender_id)
    request = member.request
    if request.status == DrawStatus.COMPLETE:
        request.status = DrawStatus.DRAWN
    person = member.expert.person
    if person is not None:
        notify([person], kind="expert.invitation", object_type="committee_member", object_id=member.id,
               subject=_l("Invitation to evaluate tender %(code)s (评标邀请)"),
               body=_l("You were drawn as an expert (specialty %(specialty)s) for tender %(code)s. Open "
                       "\"My invitations\" to accept or decline. Check-in: %(check_in)s; venue: %(venue)s."),
               code=tender.code, specialty=member.specialty, venue=member.venue or "-",
               check_in=beijing(request.check_in_at).strftime("%Y-%m-%d %H:%M (北京时间)") if request.check_in_at else "-")
    _log(tender, "invited", member, detail=member.specialty)
    db.session.flush()
    audit.record(actor, "draw.invited", "committee_member", member.id,
                 {"tender_id": member.tender_id, "expert": member.expert.code, "alternate": member.is_alternate})


def evaluation_of(tender_id: int) -> Evaluation | None:
    return db.session.scalar(select(Evaluation).where(Evaluation.tender_id == tender_id))


def _own_member(actor: Actor, member_id: int) -> tuple[CommitteeMember, Tender]:
    member = db.session.get(CommitteeMember, member_id)
    if member is None:
        raise NotFound()
    if member.expert.person_id is None or member.expert.person_id != actor.person_id:
        raise NotYourInvitation()
    return member, lock_tender(member.tender_id)


def _settle(actor: Actor, request: DrawRequest) -> None:
    """COMPLETE (alternates released) once every expert seat accepted; SHORT when seats are empty."""
    seated = sum(1 for m in request.members if m.status in (MemberStatus.ACCEPTED, MemberStatus.SIGNED_IN))
    invited = any(m.status == MemberStatus.INVITED for m in request.members)
    if seated >= seat_count(request) and not invited and request.status != DrawStatus.COMPLETE:
        request.status = DrawStatus.COMPLETE
        for m in request.members:
            if m.status == MemberStatus.WAITING:
                m.status = MemberStatus.RELEASED
        db.session.flush()
        audit.record(actor, "draw.complete", "tender", request.tender_id, {"seats": seat_count(request)})
    publish_status(request)


def accept(actor: Actor, member_id: int) -> CommitteeMember:
    """The expert accepts the invitation."""
    member, tender = _own_member(actor, member_id)
    if member.status == MemberStatus.ACCEPTED:
        return member
    if member.status != MemberStatus.INVITED:
        raise SignInRefused(_l("Only an open invitation can be accepted; this one is %(status)s."),
                            code="not_invited", status=member.status.value)
    member.status, member.answered_at = MemberStatus.ACCEPTED, now()
    _log(tender, "accepted", member)
    db.session.flush()
    audit.record(actor, "draw.accepted", "committee_member", member.id, {"tender_id": tender.id})
    _settle(actor, member.request)
    return member


def decline(actor: Actor, member_id: int, reason: str) -> CommitteeMember:
    """The expert declines (the reason is kept); the next alternate is invited."""
    member, tender = _own_member(actor, member_id)
    reason = (reason or "").strip()
    if not reason or len(reason) > 500:
        raise ValidationFailed(_l("Give the reason for declining (1 to 500 characters)."),
                               fields={"reason": [_l("Give the reason for declining (1 to 500 characters).")]})
    if member.status not in (MemberStatus.INVITED, MemberStatus.ACCEPTED) or evaluation_of(tender.id):
        raise SignInRefused(_l("This invitation can no longer be declined (it is %(status)s); once the evaluation "
                               "has started, declare a conflict instead."), code="not_declinable",
                            status=member.status.value)
    member.status, member.answered_at, member.decline_reason = MemberStatus.DECLINED, now(), reason
    _log(tender, "declined", member)
    db.session.flush()
    audit.record(actor, "draw.declined", "committee_member", member.id, {"tender_id": tender.id, "reason": reason})
    call_next(actor, member)
    return member


def call_next(actor: Actor, vacated: CommitteeMember) -> CommitteeMember | None:
    """Invite the next alternate for ``vacated``'s seat: same specialty first, then any, in draw order.

    After the bids are known, an alternate in conflict with a party is recused on the spot and skipped.
    With none left, the request becomes SHORT and its managers are told to run a top-up draw.
    """
    from evaluation.drawing import facts_of, parties_of  # the draw module seats through this one

    request = vacated.request
    tender = db.session.get(Tender, request.tender_id)
    waiting = sorted((m for m in request.members if m.status in CALLABLE and m.is_alternate),
                     key=lambda m: (m.specialty != vacated.specialty, m.position))
    parties = parties_of(tender, request) if evaluation_of(tender.id) else None
    for candidate in waiting:
        reasons = R.conflict_reasons(facts_of(candidate.expert), parties) if parties else []
        if reasons:
            _recuse(actor, tender, candidate, reasons, automatic=True, replace=False)
            continue
        invite(actor, candidate)
        publish_status(request)
        return candidate
    request.status = DrawStatus.SHORT
    db.session.flush()
    audit.record(actor, "draw.short", "tender", tender.id, {"specialty": vacated.specialty})
    notify(staff_of([tender.tenderer_id, tender.agency_id], [Role.TENDERER, Role.AGENCY]), kind="draw.short",
           object_type="tender", object_id=tender.id,
           subject=_l("Tender %(code)s: the expert committee is short (补抽 needed)"),
           body=_l("No alternate is left for tender %(code)s. Open the draw page and run a top-up draw."),
           code=tender.code)
    publish_status(request)
    return None


def reason_text(reasons: list[str]) -> str:
    return "; ".join(str(R.REASON_LABELS.get(r, r)) for r in reasons)


def _recuse(actor: Actor, tender: Tender, member: CommitteeMember, reasons: list[str], *, automatic: bool,
            replace: bool = True, detail: str | None = None) -> None:
    member.status, member.recused_at = MemberStatus.RECUSED, now()
    member.recusal_reason = detail or reason_text(reasons)
    _log(tender, "recused", member, detail=",".join(reasons) or "declared")
    db.session.flush()
    audit.record(actor, "draw.recused", "committee_member", member.id,
                 {"tender_id": tender.id, "reasons": reasons, "automatic": automatic, "detail": detail})
    if replace:
        call_next(actor, member)
    evaluation = evaluation_of(tender.id)
    if evaluation is not None:
        members_changed(evaluation.id)


def declare_conflict(actor: Actor, member_id: int, reason: str) -> CommitteeMember:
    """The expert declares a conflict of interest themselves (主动回避): recused and replaced."""
    member, tender = _own_member(actor, member_id)
    reason = (reason or "").strip()
    if not reason or len(reason) > 500:
        raise ValidationFailed(_l("Describe the conflict (1 to 500 characters)."),
                               fields={"reason": [_l("Describe the conflict (1 to 500 characters).")]})
    if member.status not in (MemberStatus.INVITED, MemberStatus.ACCEPTED, MemberStatus.SIGNED_IN):
        raise SignInRefused(_l("You are not sitting on this committee (%(status)s)."), code="not_sitting",
                            status=member.status.value)
    _recuse(actor, tender, member, ["declared"], automatic=False, detail=reason)
    return member


# --- sign-in and the declaration ------------------------------------------------------------------------

def bidders(tender_id: int) -> list[Organisation]:
    from bidding.opening_models import BidOpening

    stmt = (select(Organisation).join(BidOpening, BidOpening.organisation_id == Organisation.id)
            .where(BidOpening.tender_id == tender_id).distinct().order_by(Organisation.uscc))
    return list(db.session.scalars(stmt))


def declaration_text(member: CommitteeMember) -> str:
    """The recusal declaration (回避声明及承诺书) the member signs: the bidders and the statutory statements."""
    tender = db.session.get(Tender, member.tender_id)
    lines = ["回避声明及承诺书 Recusal declaration and commitment",
             f"项目 Tender: {tender.code} {tender.title}",
             f"专家 Expert: {member.expert.name} ({member.expert.code}), 专业 specialty {member.specialty}",
             "投标人 Bidders:"]
    lines += [f"{i}. {org.name} 统一社会信用代码 USCC {org.uscc}" for i, org in enumerate(bidders(tender.id), 1)]
    lines += [
        "本人郑重声明 I declare:",
        "1. 本人不是投标人或其主要负责人的近亲属，不是项目主管部门或行政监督部门的人员，与投标人没有经济利益关系，"
        "未因在招标、评标以及其他与招标投标有关活动中从事违法行为受过行政处罚或刑事处罚"
        "（《评标委员会和评标方法暂行规定》第十二条，《招标投标法实施条例》第四十六条）。"
        " I am not a near relative of a bidder or of its principal, not staff of the supervising authority, have no "
        "economic interest with a bidder, and was never penalised for bidding misconduct.",
        "2. 本人将客观、公正地履行职责，遵守职业道德，对所提出的评审意见承担个人责任；不私下接触投标人，不收受财物，"
        "不透露评审情况。 I will evaluate objectively and fairly, answer personally for my opinions, not meet bidders "
        "privately, accept nothing, and disclose nothing of the evaluation.",
        "3. 评标过程中如出现应当回避的情形，本人将立即主动提出回避。 Should a ground for recusal arise during the "
        "evaluation, I will declare it at once.",
    ]
    return "\n".join(lines)


def valid_certificates(person: Person) -> list[Certificate]:
    """The person's own platform certificates that are valid now (newest first)."""
    out = []
    for cert in db.session.scalars(select(Certificate).where(Certificate.person_id == person.id,
                                                             Certificate.revoked_at.is_(None))
                                   .order_by(Certificate.not_before.desc(), Certificate.id.desc())):
        try:
            verify_certificate(cert.pem)
        except CertificateRefused:
            continue
        out.append(cert)
    return out


def _signing_certificate(person: Person, text: str, signature: str) -> Certificate:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        raw = base64.b64decode(signature or "", validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    for cert in valid_certificates(person):
        public = x509.load_pem_x509_certificate(cert.pem.encode()).public_key()
        if isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1" and raw \
                and keys.verify(public, raw, text.encode("utf-8")):
            return cert
    raise SignInRefused(_l("The signature does not verify with any of your valid platform certificates; sign the "
                           "declaration text exactly as shown (UTF-8) with your certificate's key."),
                        code="bad_signature")


def sign_in(actor: Actor, member_id: int, *, text_sha256: str, signature: str | None = None,
            typed_name: str | None = None) -> CommitteeMember:
    """Sign in to the started evaluation: cross-check the bidders, then sign the declaration.

    Returns the member: SIGNED_IN, or RECUSED (reasons kept, the next alternate invited) on a conflict.
    """
    member, tender = _own_member(actor, member_id)
    evaluation = evaluation_of(tender.id)
    if evaluation is None:
        raise SignInRefused(_l("The evaluation of tender %(tender)s has not started; sign in once it has."),
                            code="not_started", tender=tender.code)
    if member.status == MemberStatus.SIGNED_IN:
        return member
    if member.status != MemberStatus.ACCEPTED:
        raise SignInRefused(_l("Only a member who accepted the invitation signs in; you are %(status)s."),
                            code="not_accepted", status=member.status.value)
    from evaluation.drawing import facts_of, parties_of

    reasons = R.conflict_reasons(facts_of(member.expert), parties_of(tender, member.request))
    if reasons:
        _recuse(actor, tender, member, reasons, automatic=True)
        return member
    text = declaration_text(member)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if (text_sha256 or "").strip().lower() != digest:
        raise SignInRefused(_l("The declaration changed since you opened it (for instance the list of bidders); "
                               "read it again and sign the current text."), code="declaration_changed")
    person = member.expert.person
    if signature:
        cert = _signing_certificate(person, text, signature)
        member.declaration_signature, member.declaration_certificate_id = signature, cert.id
        member.declaration_method = "certificate"
    elif valid_certificates(person):
        raise SignInRefused(_l("You hold a platform certificate: sign the declaration with it."),
                            code="signature_required")
    elif (typed_name or "").strip() != member.expert.name.strip():
        raise SignInRefused(_l("Type your name exactly as registered (%(name)s) to sign the declaration."),
                            code="name_mismatch", name=member.expert.name, fields={"typed_name": [
                                _l("Type your name exactly as registered.")]})
    else:
        member.declaration_method = "typed"
    member.declaration, member.declaration_sha256 = text, digest
    member.status, member.signed_in_at = MemberStatus.SIGNED_IN, now()
    _log(tender, "signed-in", member, sha256=digest, detail=member.declaration_method)
    db.session.flush()
    audit.record(actor, "draw.signed_in", "committee_member", member.id,
                 {"tender_id": tender.id, "declaration_sha256": digest, "method": member.declaration_method})
    members_changed(evaluation.id)
    return member
