"""``ebid demo``: five bidders seal and submit, one replaces, one withdraws; a second run changes nothing."""

from __future__ import annotations

import stat

from cryptography import x509
from sqlalchemy import func, select

from bidding import Bid, sealed_models
from bidding.models import Tender
from bidding.receipts import log_key, receipt_key
from core.db import db
from core.storage import default_store
from crypto.envelope import verify_bytes
from crypto.receipt import SignedDocument, verify_receipt


def test_demo_submits_sealed_bids_once(app, settings):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo", "--no-serve"])
    assert result.exit_code == 0, result.output
    assert "platform CA (its passphrase is kept for the demo in" in result.output
    assert "Demo only:" in result.output
    db.session.expire_all()
    tender = db.session.scalar(select(Tender))
    assert tender.opening_key_id is not None  # the custodians' certificates let the key ceremony run
    bids = db.session.scalars(select(Bid).order_by(Bid.lot_id, Bid.organisation_id, Bid.version)).all()
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
    entries = db.session.scalar(select(func.count()).select_from(sealed_models.LogEntry))

    again = runner.invoke(args=["demo", "--no-serve"])
    assert again.exit_code == 0, again.output
    assert "Everything already existed; nothing changed." in again.output
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Bid)) == 11
    assert db.session.scalar(select(func.count()).select_from(sealed_models.LogEntry)) == entries
