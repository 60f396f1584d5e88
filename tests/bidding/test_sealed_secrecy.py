"""With everything the server holds (database dump, storage folder, keys folder, config), no bid opens.

The test plays the insider: it dumps every row of every table and reads every file under the data
folder, tries every private key it finds there on every envelope and every encrypted share, and searches
the dump for the opening key and the content keys. Then it shows the same envelopes do open with what
only the custodians hold, so the test would notice if the server kept enough to open them.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from bidding import opening_key
from bidding.sealed_models import Bid
from core.db import db
from core.storage import default_store
from crypto import envelope as E
from crypto import shamir
from crypto.errors import CryptoError
from crypto.header import read_header
from tests.bidding.sealed_support import kit_fixture, lot_of, submit  # noqa: F401  (kit_fixture is the kit fixture)


def database_dump() -> bytes:
    """Every value of every row of every table, as a DBA's dump would hold them."""
    parts = []
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            for row in conn.execute(table.select()):
                for value in row:
                    parts.append(value if isinstance(value, bytes) else str(value).encode())
    return b"\n".join(parts)


def data_files(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def private_keys_in(blobs) -> list[ec.EllipticCurvePrivateKey]:
    """Every private key that loads without a passphrase from anything the server holds."""
    found = []
    for blob in blobs:
        for loader in (serialization.load_pem_private_key, serialization.load_der_private_key):
            try:
                key = loader(blob, password=None)
            except (ValueError, TypeError):
                continue
            if isinstance(key, ec.EllipticCurvePrivateKey):
                found.append(key)
    return found


def encodings(key: ec.EllipticCurvePrivateKey) -> list[bytes]:
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return [scalar, scalar.hex().encode(), base64.b64encode(scalar), der, base64.b64encode(der)[:64]]


def test_everything_the_server_holds_does_not_open_a_bid(kit, settings):
    tender = kit.tender(mode="custodians", custodians=3, threshold=2)
    lot = lot_of(tender)
    bidders = [kit.bidder() for _ in range(3)]
    envelopes = [kit.seal(tender, lot, b, recipients=[E.Recipient(E.ROLE_TENDER, _tender_key(tender))])
                 for b in bidders]
    for b, envelope in zip(bidders, envelopes, strict=True):
        assert submit(b.client, tender, lot, envelope).status_code == 201
    db.session.commit()

    dump = database_dump()
    files = data_files(Path(settings.data_dir))
    stored = [default_store().read_bytes(sha) for sha in db.session.scalars(select(Bid.envelope_sha256))]
    assert sorted(stored) == sorted(envelopes)
    server_keys = private_keys_in([*files.values(), *dump.split(b"\n")])
    assert len(server_keys) >= 2  # the log and receipt signing keys are found, and are useless here
    for envelope in stored:
        header = read_header(io.BytesIO(envelope))
        for key in server_keys:
            try:
                E.content_key_from(header, [key])
            except CryptoError:
                continue
            raise AssertionError("a key the server holds unwraps a bid's content key")
    for row in opening_key.shares_of(tender):
        for key in server_keys:
            try:
                shamir.decrypt_share(row.encrypted_share, key, context=opening_key.share_context(
                    tender.code, row.custodian_id, row.share_index))
            except CryptoError:
                continue
            raise AssertionError("a key the server holds decrypts a custodian's share")

    # what only the custodians hold rebuilds the key; neither it nor any content key is in the dump
    opening = kit.opening_private_key(tender)
    everything = dump + b"".join(files.values())
    assert not any(e in everything for e in encodings(opening))
    for envelope, b in zip(stored, bidders, strict=True):
        header = read_header(io.BytesIO(envelope))
        content_key = E.content_key_from(header, [opening])
        assert content_key not in everything and content_key.hex().encode() not in everything
        plain = E.open_bytes(envelope, signer_public_key=b.signing_key.public_key(), private_keys=[opening])
        assert plain.startswith(b"bid of") and plain not in everything


def _tender_key(tender) -> ec.EllipticCurvePublicKey:
    return serialization.load_pem_public_key(tender.opening_public_key_pem.encode())
