"""Helpers of the opening-record tests: an opening whose bids are decrypted (one failed, cause decided)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from cryptography import x509

from bidding import opening, opening_decrypt, opening_process
from core.clock import clock
from core.db import db
from core.identity.ca import load_ca_certificate
from core.pdf import sign_field
from guarantees.cash_bonds import CashBond
from guarantees.models import BondWaiver, WaiverKind
from tests.bidding.opening_support import Opening


@dataclass
class Signer:
    person: Any
    key: Any
    cert_row: Any

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_row.pem.encode())


@dataclass
class Decrypted:
    o: Opening
    host: Signer
    supervisor: Signer

    @property
    def tender_id(self) -> int:
        return self.o.tender.id

    def sign(self, pdf: bytes, field: str, signer: Signer) -> bytes:
        return sign_field(pdf, field, signer.key, signer.cert, [load_ca_certificate()], stamp_text=signer.person.name,
                          reason="开标记录 Opening record", signer_name=signer.person.name)


@pytest.fixture(name="decrypted")
def decrypted_fixture(make_opening, kit):
    """Three bidders: two decrypt, the third's key is lost (cause bidder, decided by host and supervisor).

    Bonds: bidder 0 is an SME with a waiver, bidder 1 paid a cash bond, bidder 2 has none.
    """
    o = make_opening(3, mode="bidder", custodians=0, guarantee_policy={"mode": "waived_sme"})
    lot = o.tender.lots[0]
    o.bidders[0].org.is_sme = True
    db.session.add(BondWaiver(tender_id=o.tender.id, lot_id=lot.id, bidder_id=o.bidders[0].org.id,
                              kind=WaiverKind.WAIVED_SME, statement="SME", bond_amount=Decimal("20000.00")))
    db.session.add(CashBond(tender_id=o.tender.id, lot_id=lot.id, bidder_id=o.bidders[1].org.id,
                            amount=Decimal("20000.00"), reference="TRX-1", recorded_by_id=o.host.id,
                            received_at=o.tender.bid_deadline_at - timedelta(days=1)))
    db.session.commit()
    opening.start_decryption(o.host_actor, o.tender.id)
    db.session.commit()
    for b in o.bidders[:2]:
        opening_decrypt.submit_content_key(b.actor, o.tender.id, o.bid_of(b).public_id, o.content_key(b))
        db.session.commit()
        opening_process.process_pending(o.tender.id)
    clock.travel(timedelta(minutes=31))
    opening_process.advance_all(o.host_actor)
    row = o.row_of(o.bidders[2])
    for actor in (o.host_actor, o.supervisor_actor):
        opening_decrypt.decide_failure(actor, o.tender.id, row.id, cause="bidder", reason="key lost",
                                       evidence="bidder's statement")
    db.session.commit()
    host_key, host_cert = kit.certify(person=o.host)
    sup_key, sup_cert = kit.certify(person=o.supervisor)
    db.session.commit()
    return Decrypted(o, Signer(o.host, host_key, host_cert), Signer(o.supervisor, sup_key, sup_cert))
