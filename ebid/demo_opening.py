"""The demo's online opening (不见面开标) of its tender, end to end over the real services.

Timeline: the demo tender's bid deadline lies 25 days after its publication. So that its opening can be
shown at once, the first run of ``ebid demo`` starts the platform clock :data:`REWIND` in the past
(:class:`DemoTime`): the tender is published, bid on and guaranteed "then"; the clock moves to the
deadline, still in the past, where the opening runs; the 30-minute decryption window passes by moving the
clock again; at the end the clock is back at the present. Nothing is dated in the future and every rule
(deadline, window, confirmation window) is checked by the services against that one clock.

The opening: the agency names its staff member as host (主持人) and the supervisor (监督人); the host
commits the seed of the downward coefficient K in the transparency log; the five bidders check in; the
host starts the decryption; bidders 1–4 unwrap their content keys on their own side with their own keys
and send only the keys; bidder 5 has lost its key (another key cannot unwrap its bid), so at the window's
end the key custodians (密钥保管人) each decrypt their share with their own key and release it, and the
rebuilt opening key opens that bid (mode ``bidder_then_custodians``). K is drawn from the committed seed,
the record (开标记录) is built, four bidders confirm it, one objects and the host answers, and the host
and the supervisor sign the PDF with their own certificate keys; with both signatures it is published.
Running the demo again changes nothing: every step looks at the state first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from time import monotonic, sleep
from typing import Any

import click
from cryptography import x509
from flask import current_app
from sqlalchemy import func, select

from bidding import opening, opening_decrypt, opening_draws, opening_key, opening_process, record_service
from bidding.models import Tender, TenderStatus
from bidding.opening_handoff import handoff_check
from bidding.opening_models import BidOpening, BidOpeningStatus, CheckIn, OpeningPhase
from bidding.record_models import RecordStatus
from bidding.sealed_models import Bid, TenderLog
from bidding.tasks import close_due
from core.actor import Actor
from core.clock import as_utc, beijing, clock, now
from core.db import db
from core.identity import ca as platform_ca
from core.identity.access import actor_for
from core.identity.models import Person, Role
from core.storage import default_store
from crypto import envelope as E
from crypto import keys, shamir
from crypto.errors import CryptoError
from crypto.header import Header
from ebid.demo_bids import BIDDERS, ca_unlocker, demo_dir, ensure_certificate
from ebid.demo_guarantees import serve
from guarantees.models import GuaranteeOrder
from guarantees.tasks import send_outbox

REWIND = timedelta(days=30)  # the deadline is 25 days after publication: 5 days left for evaluation and publicity
DRAW = "K"
LOST_KEY_BIDDER = 5  # its key is "lost": the custodians open its bid
OBJECTING_BIDDER = 4
HOST, SUPERVISOR = "agent@demo.ebid", "supervisor@demo.ebid"
OBJECTION = "我公司对第一标段由密钥保管人解密的投标文件有异议:请说明该投标文件的解密过程及其可核验依据。"
ANSWER = ("该投标人未在解密时限内解密,按招标文件约定(投标人解密,逾时由密钥保管人解密)由两名密钥保管人各自解密并提交"
          "其份额,平台恢复开标密钥并与公布的开标公钥核对后解密该投标文件。份额提交、密钥恢复与解密均已记入审计日志和"
          "透明日志,可在开标大厅核验。")


class DemoTime:
    """The demo's clock: shifted to the past for a first run, moved forward for the opening, then restored."""

    def __init__(self) -> None:
        self.shift = timedelta(0)

    def travel(self, delta: timedelta) -> None:
        clock.travel(delta)
        self.shift += delta

    def advance_to(self, at: datetime) -> None:
        """Move the clock forward to ``at`` (never back)."""
        gap = as_utc(at) - now()
        if gap > timedelta(0):
            self.travel(gap)

    def restore(self) -> None:
        """Undo every move the demo made: the clock shows the present again."""
        if self.shift:
            clock.travel(-self.shift)
            self.shift = timedelta(0)


@contextlib.contextmanager
def demo_time(tender_exists: bool) -> Iterator[DemoTime]:
    """Start in the past when the demo tender is still to be made (and the CA allows it); restore at the end."""
    time = DemoTime()
    ca_path = platform_ca.keys_dir() / platform_ca.CA_CERT_FILE  # certificates issued "then" need a CA valid then
    ca_since = x509.load_pem_x509_certificate(ca_path.read_bytes()).not_valid_before_utc if ca_path.exists() else None
    if not tender_exists and (ca_since is None or ca_since <= now() - REWIND):
        time.travel(-REWIND)
    try:
        yield time
    finally:
        time.restore()


@dataclass
class OpeningReport:
    """What the opening part did (``lines``) and where it stands, for the summary."""

    lines: list[str] = field(default_factory=list)
    note: str | None = None
    pdf_path: Any = None


def _actors(result: Any) -> dict[str, Any]:
    people, orgs = result.people, result.orgs
    bidders = {n: actor_for(people[f"bidder{n}@demo.ebid"], Role.BIDDER, orgs[f"bidder{n}"].id, source="demo")
               for n in range(1, BIDDERS + 1)}
    return {"host": actor_for(people[HOST], Role.AGENCY, orgs["agency"].id, source="demo"),
            "supervisor": actor_for(people[SUPERVISOR], Role.SUPERVISOR, source="demo"), "bidders": bidders}


def _rows(tender_id: int, organisation_id: int | None = None) -> list[tuple[BidOpening, Bid]]:
    stmt = (select(BidOpening, Bid).join(Bid, Bid.id == BidOpening.bid_id).where(BidOpening.tender_id == tender_id)
            .order_by(BidOpening.id))
    if organisation_id is not None:
        stmt = stmt.where(BidOpening.organisation_id == organisation_id)
    return [(row, bid) for row, bid in db.session.execute(stmt).all()]


def envelope_header(bid: Bid) -> Header:
    """The envelope's header: what the client downloads to unwrap the content key on the bidder's side."""
    with default_store().open(bid.envelope_sha256) as fh:
        return E.read_header(fh)


def _close_at_deadline(tender: Tender, time: DemoTime, report: OpeningReport) -> Tender:
    time.advance_to(as_utc(tender.bid_deadline_at) + timedelta(minutes=1))
    db.session.commit()
    close_due(Actor.system(source="demo"))  # what the scheduler does every 10 s
    tender = db.session.get(Tender, tender.id, populate_existing=True)
    lots = (db.session.get(TenderLog, tender.id).closing or {}).get("lots") or {}
    counts = ", ".join(f"lot {code}: {v['bids']} bids" for code, v in sorted(lots.items()))
    report.lines.append(f"bid deadline {beijing(tender.bid_deadline_at):%Y-%m-%d %H:%M} passed: {counts}; "
                        f"tender status {tender.status.value}")
    return tender


def _prepare(result: Any, tender: Tender, actors: dict[str, Any], report: OpeningReport) -> None:
    """Host and supervisor named, K's seed committed, bidders checked in, decryption started."""
    host = actors["host"]
    if not opening.participants(tender.id):
        opening.name_participants(host, tender.id, host_id=result.people[HOST].id,
                                  supervisor_ids=[result.people[SUPERVISOR].id], window_minutes=30)
        db.session.commit()
        report.lines.append(f"host {result.people[HOST].name}, supervisor {result.people[SUPERVISOR].name}; "
                            "decryption window 30 minutes")
    session = opening.get_session(tender.id)
    if _drawn(tender.id) is None and session.phase == OpeningPhase.CHECKIN:
        draw = opening_draws.commit_draw(host, tender.id, DRAW)
        db.session.commit()
        report.lines.append(f"seed for {DRAW} committed in the transparency log before any price is known: "
                            f"SHA-256 {draw.commitment[:16]}… (log entry {draw.commit_index})")
    if session.phase == OpeningPhase.CHECKIN:
        for n, actor in actors["bidders"].items():
            if _rows(tender.id, actor.organisation_id):
                opening.check_in(actor, tender.id, remote_addr=f"198.51.100.{n}")
                db.session.commit()
        count = db.session.scalar(select(func.count()).select_from(CheckIn).where(CheckIn.tender_id == tender.id))
        report.lines.append(f"{count} bidders checked in with their certificates")
        opening.start_decryption(host, tender.id)
        db.session.commit()
        report.lines.append("the host started the decryption")


def _bidders_decrypt(result: Any, tender: Tender, actors: dict[str, Any], report: OpeningReport) -> None:
    """Bidders 1–4 unwrap their content keys with their own keys and send them; bidder 5 cannot."""
    ca = ca_unlocker([])
    for n, actor in actors["bidders"].items():
        person, org = result.people[f"bidder{n}@demo.ebid"], result.orgs[f"bidder{n}"]
        waiting = [(row, bid) for row, bid in _rows(tender.id, org.id)
                   if row.status == BidOpeningStatus.PENDING and row.pending_key is None]
        if not waiting:
            continue
        key = keys.generate_private_key() if n == LOST_KEY_BIDDER else ensure_certificate(person, org, ca, [])[0]
        for _row, bid in waiting:
            try:
                content_key = bytearray(E.unwrap_key_part(envelope_header(bid), key)[1])
            except CryptoError as exc:
                report.lines.append(f"{org.name} lost its key: the key it has cannot unwrap its bid for lot "
                                    f"{bid.lot.code} ({exc}); nothing is sent")
                continue
            try:
                opening_decrypt.submit_content_key(actor, tender.id, bid.public_id, bytes(content_key))
            finally:
                content_key[:] = bytes(len(content_key))  # sent; not kept
            db.session.commit()
            opening_process.process_pending(tender.id)
            report.lines.append(f"{org.name} decrypted its bid for lot {bid.lot.code} (content key unwrapped "
                                "with its own key, only the key sent)")


def _custodians_open(result: Any, tender: Tender, time: DemoTime, report: OpeningReport) -> None:
    """The window ends; the custodians release their shares; the rebuilt key opens the remaining bid."""
    session = opening.get_session(tender.id)
    time.advance_to(as_utc(session.decryption_deadline) + timedelta(seconds=1))
    opening_process.advance(Actor.system(source="demo"), tender.id)  # the periodic task at the window's end
    session = opening.get_session(tender.id)
    if session.phase != OpeningPhase.DECRYPTING or session.key_rebuilt_at is not None:
        return
    report.lines.append(f"the window ended at {beijing(session.decryption_deadline):%H:%M}: the key custodians "
                        "open what is left")
    ca = ca_unlocker([])
    for custodian in tender.custodians:
        if opening.get_session(tender.id).key_rebuilt_at is not None:
            break
        person = db.session.get(Person, custodian.person_id)
        key = ensure_certificate(person, None, ca, [])[0]
        row = opening_key.share_for(tender, person.id)
        share = shamir.decrypt_share(row.encrypted_share, key, context=opening_key.share_context(
            tender.code, person.id, row.share_index))
        outcome = opening_decrypt.release_share(actor_for(person, Role.CUSTODIAN, source="demo"), tender.id,
                                                share.to_bytes())
        db.session.commit()
        opening_process.process_pending(tender.id)
        report.lines.append(f"{person.name} released share {outcome['share_index']} "
                            f"({outcome['released']} of {outcome['threshold']} needed)"
                            + ("; opening key rebuilt, checked, used and wiped" if outcome["key_rebuilt"] else ""))


def _drawn(tender_id: int) -> dict[str, Any] | None:
    return next((d for d in opening.draws(tender_id) if d["name"] == DRAW), None)


def _draw(tender: Tender, actors: dict[str, Any], report: OpeningReport) -> None:
    draw = _drawn(tender.id)
    if draw is None or draw["result"] is not None:
        return
    row = opening_draws.reveal_draw(actors["host"], tender.id, DRAW)
    db.session.commit()
    check = opening_draws.verify_draw(tender.id, DRAW)
    report.lines.append(f"{DRAW} drawn in public from {', '.join(row.choices)}: {row.result} "
                        f"(seed revealed in log entry {row.reveal_index}; recomputed from the log: "
                        f"{'ok' if check.ok else check.message})")


def _record(result: Any, tender: Tender, actors: dict[str, Any], report: OpeningReport) -> None:
    """Build the record; bidders confirm, one objects and the host answers."""
    host = actors["host"]
    record = record_service.get_record(tender.id)
    if record is None:
        record = record_service.build_record(host, tender.id, window_minutes=15)
        db.session.commit()
        report.lines.append(f"opening record built: {len(record.rows)} rows, SHA-256 {record.sha256[:16]}…")
    if record.status == RecordStatus.CONFIRMING:
        answered = {r.organisation_id for r in record.responses}
        order = [OBJECTING_BIDDER] + [n for n in actors["bidders"] if n != OBJECTING_BIDDER]
        for n in order:
            actor = actors["bidders"][n]
            if actor.organisation_id in answered or actor.organisation_uscc not in {r["uscc"] for r in record.rows}:
                continue
            if n == OBJECTING_BIDDER:
                record_service.raise_objection(actor, tender.id, OBJECTION)
                report.lines.append(f"{result.orgs[f'bidder{n}'].name} objected: {OBJECTION}")
            else:
                record_service.confirm(actor, tender.id)
                report.lines.append(f"{result.orgs[f'bidder{n}'].name} confirmed the record (无异议)")
            db.session.commit()
    for objection in record_service.require_record(tender.id).objections:
        if objection.answered_at is None:
            record_service.answer_objection(host, tender.id, objection.id, ANSWER)
            db.session.commit()
            report.lines.append(f"the host answered: {ANSWER[:40]}…")


def _sign(result: Any, tender: Tender, actors: dict[str, Any], report: OpeningReport) -> None:
    """Host and supervisor each sign their field with their own certificate key; published with both."""
    from ebid.client.record import sign_in_process

    record = record_service.tick(tender.id)
    if record.status != RecordStatus.SIGNING:
        return
    ca, chain = ca_unlocker([]), [platform_ca.load_ca_certificate()]
    for role, email in (("host", HOST), ("supervisor", SUPERVISOR)):
        if getattr(record, f"{role}_signed_at") is not None:
            continue
        key, cert = ensure_certificate(result.people[email], None, ca, [])
        record = sign_in_process(actors[role], tender.id, key, cert, chain)
        db.session.commit()
        report.lines.append(f"{result.people[email].name} signed the record as {role} (PAdES, certificate serial "
                            f"{cert.serial_number:x})")
    if record.status == RecordStatus.PUBLISHED:
        report.lines.append(f"record published; the opening is {opening.get_session(tender.id).phase.value}")


def _board_lines(tender: Tender) -> list[str]:
    lines = []
    for row in opening.board(tender):
        form = row["form"] or {}
        manager = (form.get("project_manager") or {}).get("name", "-")
        lines.append(f"  lot {row['lot']} · {row['bidder']} · {row['status']} by {row['method'] or '-'} · "
                     f"{form.get('price', '-')} CNY · {form.get('duration_days', '-')} days · {manager}")
    return lines


def _keep_pdf(tender: Tender, report: OpeningReport) -> None:
    record = record_service.get_record(tender.id)
    if record is None or record.status != RecordStatus.PUBLISHED:
        return
    path = demo_dir() / f"opening-record-{tender.code}.pdf"
    data = default_store().read_bytes(record.pdf_sha256)
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
    report.pdf_path = path


def run_opening(result: Any, time: DemoTime) -> OpeningReport:
    """Run (or find done) the opening of the demo tender; return what happened."""
    report = OpeningReport()
    tender = result.tender
    if tender is None:
        return report
    if tender.status == TenderStatus.PUBLISHED and as_utc(tender.bid_deadline_at) > now() and not time.shift:
        report.note = (f"the opening runs at the bid deadline {beijing(tender.bid_deadline_at):%Y-%m-%d %H:%M}; "
                       "this tender was made before the demo ran openings: use a fresh data dir to see one")
        return report
    if tender.status == TenderStatus.PUBLISHED:
        tender = _close_at_deadline(tender, time, report)
    if tender.status == TenderStatus.FAILED:
        report.note = "no lot had three bids: the tender failed (流标) and is offered for re-tender"
        return report
    actors = _actors(result)
    session = opening.get_session(tender.id)
    if session is None or session.phase != OpeningPhase.CLOSED:
        _prepare(result, tender, actors, report)
        if opening.get_session(tender.id).phase == OpeningPhase.DECRYPTING:
            _bidders_decrypt(result, tender, actors, report)
            _custodians_open(result, tender, time, report)
        _draw(tender, actors, report)
        failed = [r for r, _b in _rows(tender.id) if r.status == BidOpeningStatus.FAILED and not r.cause_decided_at]
        if failed:
            report.note = f"{len(failed)} bid(s) failed to decrypt; host and supervisor decide the cause in the hall"
            return report
        _record(result, tender, actors, report)
        _sign(result, tender, actors, report)
    _keep_pdf(tender, report)
    return report


def deliver_reveals(host: str, port: int, report: OpeningReport, timeout: float = 20.0) -> None:
    """Sealed letters (密文保函) are revealed to their issuers after the opening: deliver the notices and wait
    for the revealed revisions, listening on the demo's address for the issuers' callbacks meanwhile."""
    def waiting() -> list[GuaranteeOrder]:
        db.session.commit()  # see what the callbacks wrote
        db.session.expire_all()
        return list(db.session.scalars(select(GuaranteeOrder).where(GuaranteeOrder.revealed_at.is_not(None),
                                                                    GuaranteeOrder.superseded_sha256.is_(None))))
    if not waiting():
        return
    try:
        listener = serve("platform", current_app._get_current_object(), host, port)
    except OSError:  # something already serves there (`ebid serve` on the same data): callbacks go to it
        listener = None
    try:
        deadline = monotonic() + timeout
        while (pending := waiting()) and monotonic() < deadline:
            send_outbox()
            sleep(0.2)
    finally:
        if listener is not None:
            listener.stop()
    for order in db.session.scalars(select(GuaranteeOrder).where(GuaranteeOrder.revealed_at.is_not(None))):
        state = "revised letter received" if order.superseded_sha256 else "revised letter still awaited"
        report.lines.append(f"sealed letter {order.guarantee_no} revealed to {order.issuer.code} after the "
                            f"opening: {state}")
    if pending:
        report.lines.append("the issuers deliver the rest while the site is served")


def print_opening(result: Any, report: OpeningReport, base_url: str) -> None:
    tender = result.tender
    click.echo("\n== online opening (不见面开标) ==")
    for line in report.lines:
        click.echo(f"  - {line}")
    if report.note:
        click.echo(f"  {report.note}")
    if tender is None or opening.get_session(tender.id) is None:
        return
    if not report.lines:
        click.echo(f"  already opened ({opening.get_session(tender.id).phase.value}); nothing changed")
    for line in _board_lines(tender):
        click.echo(line)
    draw = _drawn(tender.id)
    if draw is not None and draw["result"] is not None:
        click.echo(f"  {DRAW} = {draw['result']} (commitment {draw['commitment'][:16]}…, seed {draw['seed'][:16]}…)")
    check = handoff_check(tender.id)
    click.echo(f"  hand-off to evaluation: {'ok' if check.ok else 'NOT ok'}: {len(check.opened)} bids opened, "
               f"final tree head size {check.final_tree_size}")
    if report.pdf_path is not None:
        click.echo(f"  signed opening record: {report.pdf_path}")
        click.echo(f"    check it: pdfsig with the platform CA ({platform_ca.keys_dir() / platform_ca.CA_CERT_FILE}) "
                   "as trust root, see docs/opening-record.md")
    click.echo(f"  hall: {base_url}/tenders/{tender.id}/hall (log in as agent@demo.ebid, supervisor@demo.ebid or a "
               "bidder)")


__all__ = ["DemoTime", "OpeningReport", "deliver_reveals", "demo_time", "print_opening", "run_opening"]
