"""Helpers of the opening tests: a tender at its opening with sealed, uploaded bids of valid bid ZIPs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bidding import opening, opening_key
from bidding.models import Tender
from bidding.opening_models import BidOpening
from bidding.sealed_models import Bid
from bidding.tasks import close_due_tenders
from core.db import db
from core.identity.access import actor_for
from crypto import envelope as E
from crypto import shamir
from ebid.client import bidzip
from tests.bidding.sealed_support import Bidder, Kit, lot_of, past_deadline, submit


@dataclass
class Opening:
    kit: Kit
    tender: Tender
    bidders: list[Bidder]
    host: Any
    supervisor: Any
    prices: dict[int, str] = field(default_factory=dict)  # organisation id -> price

    @property
    def host_actor(self):
        return actor_for(self.host, "tenderer", self.tender.tenderer_id)

    @property
    def supervisor_actor(self):
        return actor_for(self.supervisor, "supervisor")

    def bid_of(self, bidder: Bidder) -> Bid:
        return db.session.scalar(select(Bid).where(Bid.tender_id == self.tender.id, Bid.is_current.is_(True),
                                                   Bid.organisation_id == bidder.org.id))

    def row_of(self, bidder: Bidder) -> BidOpening:
        return db.session.scalar(select(BidOpening).where(BidOpening.bid_id == self.bid_of(bidder).id))

    def content_key(self, bidder: Bidder) -> bytes:
        """What the bidder's client unwraps locally with its own key (its half in double-envelope mode)."""
        from core.storage import default_store
        with default_store().open(self.bid_of(bidder).envelope_sha256) as fh:
            header = E.read_header(fh)
        return E.unwrap_key_part(header, bidder.own_key)[1]

    def share(self, n: int) -> tuple[Any, bytes]:
        """Custodian ``n`` decrypts its own share locally: (person, share bytes)."""
        person, key = self.kit.custodians[self.tender.id][n]
        row = opening_key.share_for(self.tender, person.id)
        share = shamir.decrypt_share(row.encrypted_share, key, context=opening_key.share_context(
            self.tender.code, person.id, row.share_index))
        return person, share.to_bytes()


def bid_zip(tmp: Path, lot: str, price: str, name: str) -> bytes:
    doc = tmp / f"{name}-letter.pdf"
    doc.write_bytes(b"%PDF-1.4 letter of bid " + name.encode())
    offer = bidzip.make_offer(lot=lot, price=price, duration_days=365, quality="合格", manager_name="张伟",
                              manager_certificate_no=f"鲁137{name}")
    out = tmp / f"{name}.zip"
    bidzip.build_bid(offer, [doc], out)
    return out.read_bytes()


@pytest.fixture(name="make_opening")
def make_opening_fixture(kit, create_person, tmp_path, frozen):
    """Build a tender at its opening: ``n`` bidders with valid bids (``prices`` in bidder order, else
    900000.00, 901000.00, ...), host and supervisor named."""
    def make(n: int = 4, *, mode: str = "bidder_then_custodians", custodians: int = 3, threshold: int = 2,
             window: int = 30, prices: list[str] | None = None, **overrides) -> Opening:
        tender = kit.tender(mode=mode, custodians=custodians, threshold=threshold, **overrides)
        lot = lot_of(tender)
        bidders, given, prices = [], prices, {}
        for i in range(n):
            b = kit.bidder()
            price = given[i] if given else f"{900000 + 1000 * i}.00"
            plaintext = bid_zip(tmp_path, lot.code, price, f"b{i}")
            assert submit(b.client, tender, lot, kit.seal(tender, lot, b, plaintext=plaintext)).status_code == 201
            bidders.append(b)
            prices[b.org.id] = price
        past_deadline(tender, frozen)
        close_due_tenders()
        db.session.commit()
        supervisor = create_person(roles=("supervisor",))
        db.session.commit()
        o = Opening(kit, db.session.get(Tender, tender.id), bidders, tender.created_by, supervisor, prices)
        opening.name_participants(actor_for(tender.created_by, "tenderer", tender.tenderer_id), tender.id,
                                  host_id=tender.created_by.id, supervisor_ids=[supervisor.id], window_minutes=window)
        db.session.commit()
        return o
    return make

