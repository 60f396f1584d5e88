"""``ebid demo``: five bidders seal and submit, one replaces, one withdraws; the tender is opened online and its
record signed by host and supervisor; a second run changes nothing."""

from __future__ import annotations

import io
import stat
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from sqlalchemy import func, select

from bidding import Bid, opening, sealed_models
from bidding.models import Tender
from bidding.opening_draws import verify_draw
from bidding.opening_handoff import handoff_check
from bidding.opening_models import Announcement, BidOpening, CheckIn, OpeningPhase, RandomDraw, ShareRelease
from bidding.receipts import log_key, receipt_key
from bidding.record_models import OpeningRecord, RecordConfirmation, RecordStatus
from core.audit import AuditEvent
from core.clock import as_utc, clock, now
from core.db import db
from core.identity.ca import load_ca_certificate
from core.pdf import to_asn1
from core.storage import default_store
from crypto.envelope import verify_bytes
from crypto.receipt import SignedDocument, verify_receipt
from ebid.demo_opening import DemoTime


def test_demo_submits_sealed_bids_and_opens_them_once(app, settings):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo", "--no-serve"])
    assert result.exit_code == 0, result.output
    assert "platform CA (its passphrase is kept for the demo in" in result.output
    assert "Demo only:" in result.output
    db.session.expire_all()
    tender = db.session.scalar(select(Tender).order_by(Tender.id).limit(1))  # the second one has planted signs
    assert tender.opening_key_id is not None  # the custodians' certificates let the key ceremony run
    bids = db.session.scalars(select(Bid).where(Bid.tender_id == tender.id)
                              .order_by(Bid.lot_id, Bid.organisation_id, Bid.version)).all()
    assert len(bids) == 11  # 5 bidders x 2 lots, plus one replacement
    assert sorted(b.state for b in bids) == ["current"] * 9 + ["replaced", "withdrawn"]
    per_lot = {lot.code: sum(b.is_current for b in bids if b.lot_id == lot.id) for lot in tender.lots}
    assert sorted(per_lot.values()) == [4, 5]
    for bid in bids:
        data = default_store().read_bytes(bid.envelope_sha256)
        assert len(data) == bid.envelope_size and data[:7] == b"EBIDENV"
        signer = bid.signer_certificate
        verify_bytes(data, signer_public_key=x509.load_pem_x509_certificate(signer.pem.encode()).public_key())
        verify_receipt(SignedDocument.from_json(bid.receipt), receipt_key=receipt_key().public_key(),
                       log_key=log_key().public_key(), envelope_sha256=bytes.fromhex(bid.envelope_sha256))
    secret = settings.data_dir / "demo" / "ca-passphrase"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    record = _assert_opened(tender, result.output)
    _assert_screened(tender, result.output)
    entries = db.session.scalar(select(func.count()).select_from(sealed_models.LogEntry))
    counts = _opening_counts()

    again = runner.invoke(args=["demo", "--no-serve"])
    assert again.exit_code == 0, again.output
    assert "Everything already existed; nothing changed." in again.output
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Bid).where(Bid.tender_id == tender.id)) == 11
    assert db.session.scalar(select(func.count()).select_from(sealed_models.LogEntry)) == entries
    assert "already opened (closed); nothing changed" in again.output
    assert _opening_counts() == counts
    assert db.session.scalar(select(OpeningRecord)).pdf_sha256 == record.pdf_sha256


def _assert_screened(tender, output: str) -> None:
    """The planted tender is flagged with its planted signs; the demo's main tender is clean."""
    from supervision.screening import latest_run

    planted = db.session.scalar(select(Tender).where(Tender.code != tender.code))
    assert latest_run(tender.id).findings == []
    codes = {f["code"] for f in latest_run(planted.id).findings}
    assert {"same_address", "similar_document", "regular_spacing"} <= codes
    assert "== supervision" in output and "same_address (legal)" in output


def _opening_counts() -> dict[str, int]:
    opening_events = select(func.count()).select_from(AuditEvent).where(AuditEvent.action.like("opening%"))
    return {"audit": db.session.scalar(opening_events),
            **{m.__name__: db.session.scalar(select(func.count()).select_from(m))
               for m in (BidOpening, Announcement, CheckIn, RandomDraw, ShareRelease, RecordConfirmation)}}


def _assert_opened(tender, output: str) -> OpeningRecord:
    """Opened at the deadline in the past, every bid decrypted (one by the custodians), K drawn, record signed."""
    assert "== online opening (不见面开标) ==" in output and "lost its key" in output
    assert abs(now() - datetime.now(UTC)) < timedelta(seconds=5)  # the demo put the clock back at the present
    assert as_utc(tender.bid_deadline_at) < now() - timedelta(hours=12)
    assert opening.get_session(tender.id).phase == OpeningPhase.CLOSED
    rows = db.session.scalars(select(BidOpening).where(BidOpening.tender_id == tender.id)).all()
    assert len(rows) == 9 and {r.status.value for r in rows} == {"decrypted"}
    by_custodians = [r for r in rows if r.method.value == "custodians"]
    assert [(r.organisation.name, r.lot.number) for r in by_custodians] == [("烟台鲁东交通工程有限公司", 1)]
    assert all(r.form and r.form["price"] for r in rows) and all(r.pending_key is None for r in rows)
    assert verify_draw(tender.id, "K").ok and db.session.scalar(select(RandomDraw)).result in output
    assert handoff_check(tender.id).ok
    record = db.session.scalar(select(OpeningRecord))
    assert record.status == RecordStatus.PUBLISHED and record.host_signed_at and record.supervisor_signed_at
    kinds = sorted(r.kind.value for r in record.responses)
    assert kinds == ["confirmed"] * 4 + ["objected"] and record.objections[0].answer
    pdf = default_store().read_bytes(record.pdf_sha256)
    context = ValidationContext(trust_roots=[to_asn1(load_ca_certificate())], allow_fetching=False)
    signatures = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    assert sorted(s.field_name for s in signatures) == ["Host", "Supervisor"]
    for sig in signatures:
        status = validate_pdf_signature(sig, context)
        assert status.bottom_line and status.trusted, sig.field_name
    return record


@pytest.mark.parametrize(("moves", "target", "shift"), [
    ((), timedelta(hours=1), timedelta(hours=1)),                    # forward to a later moment
    ((timedelta(days=-26),), timedelta(days=-30), timedelta(days=-26)),  # never back
    ((timedelta(days=-26),), timedelta(days=-1), timedelta(days=-1)),
])
def test_demo_time_moves_forward_only_and_restores_the_present(moves, target, shift):
    clock.freeze(datetime(2026, 5, 1, 1, 30, tzinfo=UTC))
    try:
        start = now()
        time = DemoTime()
        for delta in moves:
            time.travel(delta)
        time.advance_to(start + target)
        assert now() - start == shift
        time.restore()
        assert now() == start and time.shift == timedelta(0)
    finally:
        clock.reset()
