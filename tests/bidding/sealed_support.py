"""Helpers of the sealed-bid tests: a published tender with custodians, certified bidders, sealing, uploading.

Keys are made by the tests, as they are made by bidders and custodians in production: the server
never sees a private key here either.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from bidding import opening_key
from bidding.models import Lot, Tender
from core.db import db
from core.identity.access import actor_for
from core.identity.models import Organisation, OrganisationKind, Person
from crypto import envelope as E
from crypto import keys, shamir
from crypto.receipt import verify_receipt

SEGMENT = 256


@dataclass
class Bidder:
    person: Person
    org: Organisation
    signing_key: ec.EllipticCurvePrivateKey  # the key of the organisation's certificate
    own_key: ec.EllipticCurvePrivateKey  # the bidder's decryption key (recipient ROLE_BIDDER)
    client: Any

    @property
    def actor(self):
        return actor_for(self.person, "bidder", self.org.id)


@dataclass
class Kit:
    create_tender: Any
    create_custodian: Any
    create_org: Any
    create_person: Any
    certify: Any
    api_as: Any
    custodians: dict[int, list[tuple[Person, ec.EllipticCurvePrivateKey]]] = field(default_factory=dict)

    def tender(self, *, mode: str = "bidder_then_custodians", custodians: int = 3, threshold: int = 2,
               lots: int = 1, **overrides) -> Tender:
        """A published tender whose opening key is shared among ``custodians`` (none: no key)."""
        holders = [self.create_custodian() for _ in range(custodians)]
        lot_list = [{"title": f"Lot {i + 1}", "code": f"L{i + 1}", "estimated_price": Decimal("1000000.00"),
                     "bond_amount": Decimal("20000.00")} for i in range(lots)]
        values = {"decryption_mode": mode, "lots": lot_list}
        if holders:
            values.update(custodian_threshold=threshold, custodian_ids=[p.id for p, _ in holders])
        tender = self.create_tender(publish=True, **{**values, **overrides})
        db.session.commit()
        self.custodians[tender.id] = holders
        return tender

    def bidder(self, org: Organisation | None = None) -> Bidder:
        org = org or self.create_org(kind=OrganisationKind.COMPANY)
        person = self.create_person(roles=("bidder",), organisation=org)
        signing_key, _cert = self.certify(organisation=org)
        db.session.commit()
        return Bidder(person, org, signing_key, keys.generate_private_key(), self.api_as(person))

    def seal(self, tender: Tender, lot: Lot, bidder: Bidder, version: int = 1, plaintext: bytes | None = None,
             **options) -> bytes:
        """An envelope as the bidder's client would seal it for this tender."""
        recipients = [E.Recipient(E.ROLE_BIDDER, bidder.own_key.public_key())]
        if tender.opening_public_key_pem:
            tender_key = keys_load(tender.opening_public_key_pem)
            recipients.insert(0, E.Recipient(E.ROLE_TENDER, tender_key))
        values = {"signer": bidder.signing_key, "recipients": recipients, "segment_size": SEGMENT,
                  "context": E.bid_context(tender.code, lot.code, bidder.org.uscc, version),
                  "key_mode": E.KEY_MODE_SPLIT if tender.decryption_mode.value == "double_envelope"
                  else E.KEY_MODE_SINGLE}
        values.update(options)
        plaintext = plaintext if plaintext is not None else f"bid of {bidder.org.uscc} v{version} ".encode() * 40
        return E.seal_bytes(plaintext, **values)

    def opening_private_key(self, tender: Tender) -> ec.EllipticCurvePrivateKey:
        """What k custodians rebuild at the opening from their encrypted shares."""
        holders = {p.id: k for p, k in self.custodians[tender.id]}
        shares = [shamir.decrypt_share(row.encrypted_share, holders[row.custodian_id],
                                       context=opening_key.share_context(tender.code, row.custodian_id,
                                                                         row.share_index))
                  for row in opening_key.shares_of(tender)]
        return shamir.combine(shares, keys_load(tender.opening_public_key_pem))


def keys_load(pem: str) -> ec.EllipticCurvePublicKey:
    return serialization.load_pem_public_key(pem.encode())


@pytest.fixture(name="kit")
def kit_fixture(app, frozen, create_tender, create_custodian, create_org, create_person, certify, api_as) -> Kit:
    return Kit(create_tender, create_custodian, create_org, create_person, certify, api_as)


def start(client, tender: Tender, lot: Lot, envelope: bytes, **body):
    return client.post(f"/api/tenders/{tender.id}/lots/{lot.id}/uploads",
                       json={"size": len(envelope), "sha256": hashlib.sha256(envelope).hexdigest(), **body})


def put(client, upload_id: str, offset: int, data: bytes):
    return client.put(f"/api/uploads/{upload_id}?offset={offset}", data=data,
                      headers={"Content-Type": "application/octet-stream"})


def send(client, upload_id: str, envelope: bytes, chunk: int = 1000, start_at: int = 0) -> None:
    for offset in range(start_at, len(envelope), chunk):
        response = put(client, upload_id, offset, envelope[offset:offset + chunk])
        assert response.status_code == 200, response.get_json()


def finalize(client, upload_id: str):
    return client.post(f"/api/uploads/{upload_id}/finalize")


def submit(client, tender: Tender, lot: Lot, envelope: bytes, chunk: int = 1000):
    """Upload and finalize through the API; return the finalize response."""
    response = start(client, tender, lot, envelope)
    assert response.status_code == 201, response.get_json()
    send(client, response.get_json()["id"], envelope, chunk)
    return finalize(client, response.get_json()["id"])


def transparency_keys(client) -> dict[str, ec.EllipticCurvePublicKey]:
    return {k["use"]: keys_load(k["public_key_pem"]) for k in client.get("/api/transparency/keys").get_json()}


def check_receipt(client, data: dict, envelope: bytes):
    """Verify a finalize response offline, as a bidder would: receipt, tree head, entry, inclusion."""
    k = transparency_keys(client)
    return verify_receipt(data["receipt"], receipt_key=k["receipt"], log_key=k["log"],
                          envelope_sha256=hashlib.sha256(envelope).digest(), envelope_size=len(envelope),
                          log_entry_bytes=base64.b64decode(data["log_entry"]),
                          inclusion_proof=[bytes.fromhex(h) for h in data["inclusion_proof"]])


def lot_of(tender: Tender, n: int = 0) -> Lot:
    return db.session.scalars(select(Lot).where(Lot.tender_id == tender.id).order_by(Lot.number)).all()[n]


def past_deadline(tender: Tender, clock, by: timedelta = timedelta(seconds=1)) -> None:
    clock.freeze(tender.bid_deadline_at + by)
