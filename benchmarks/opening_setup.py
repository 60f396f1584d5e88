"""Opening throughput, part 1: a tender at its opening with N real bid ZIPs sealed, uploaded and keyed.

Everything goes through ebid's services and API, in this process: the platform CA, a tenderer, a
supervisor, three key custodians, N bidder organisations with certificates and API tokens, the tender's
publication with the opening-key ceremony, the bid ZIPs (``ebid.client.bidzip``), sealing with each
bidder's own key and context, upload and finalize through the bids API (Flask test client), the closing
at the deadline, the host's start of decryption, and each bidder's content key sent through
``opening_decrypt.submit_content_key`` (checked against the envelope, then queued).

Two benchmark-only shortcuts, printed by the driver:

* the bid deadline is moved into the past with one plain UPDATE (publication enforces 20 days);
* to time the decrypting step again on the same bids, :func:`requeue` puts N decrypted rows back in the
  queue with the content keys their bidders sent (an UPDATE), and removes their stored plaintexts.

Custodians' private keys and bidders' keys live only in the run's temp dir and are deleted with it.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
for _p in (str(HERE), str(HERE.parent)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from surge_setup import CA_PASSPHRASE, TenderRun, _pem, make_app, seal_envelopes  # noqa: E402

MIB = 1 << 20


@dataclass
class OpeningRun:
    """What the driver knows about the seeded opening (no secrets besides the run's own temp files)."""

    tender: TenderRun
    bids: list[dict] = field(default_factory=list)  # {"index", "public_id", "opening_id", "sha256", "price", ...}
    custodian_keys: list[Path] = field(default_factory=list)
    bidder_keys: list[Path] = field(default_factory=list)


def _write_key(path: Path, key) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(_pem(key))
    return path


def create_schema(env: dict[str, str]) -> None:
    """Build the schema from the models (as the test suite does): the migrations can lag the models."""
    from core.db import db, install_database_guards
    with make_app(env).app_context():
        db.create_all()
        install_database_guards(db.engine)


def seed(env: dict[str, str], n_bidders: int, key_dir: Path) -> dict:
    """CA, tenderer and staff, a supervisor, 3 custodians, ``n_bidders`` bidders; return ids, tokens, key paths."""
    from bidding.receipts import log_key, receipt_key
    from core.actor import Actor
    from core.db import db
    from core.identity import services as identity
    from core.identity.ca import init_ca, issue_certificate
    from core.identity.models import OrganisationKind
    from core.identity.tokens import issue_api_token
    from core.identity.uscc import make as make_uscc
    from crypto import keys

    admin = Actor.system(source="bench")
    key_dir.mkdir(parents=True, exist_ok=True)
    app = make_app(env)
    with app.app_context():
        ca = init_ca(admin, app.extensions["ebid.settings"].keys_dir, CA_PASSPHRASE, kdf_log2_n=14)
        receipt_key(), log_key()
        tenderer = identity.register_organisation(admin, make_uscc("91370200MB0000000"), "Opening Tenderer Co.",
                                                  OrganisationKind.TENDERER, region="370200")
        staff = identity.create_person(admin, "host@opening.test", "Host Staff")
        identity.grant_role(admin, staff, "tenderer", tenderer)
        supervisor = identity.create_person(admin, "supervisor@opening.test", "Supervisor")
        identity.grant_role(admin, supervisor, "supervisor")
        custodians, custodian_keys = [], []
        for i in range(3):
            person = identity.create_person(admin, f"custodian{i}@opening.test", f"Custodian {i}")
            identity.grant_role(admin, person, "custodian")
            key = keys.generate_private_key()
            issue_certificate(admin, keys.make_csr(key, person.name, email=person.email), person=person, ca=ca)
            custodians.append(person.id)
            custodian_keys.append(_write_key(key_dir / f"custodian-{i}.pem", key))
        db.session.commit()
        bidders = []
        for i in range(n_bidders):
            org = identity.register_organisation(admin, make_uscc(f"91370200MC{i:07d}"), f"Opening Bidder {i:04d}",
                                                 OrganisationKind.COMPANY, region="370200")
            person = identity.create_person(admin, f"bidder{i}@opening.test", f"Bidder {i:04d}")
            identity.grant_role(admin, person, "bidder", org)
            key = keys.generate_private_key()
            issue_certificate(admin, keys.make_csr(key, org.name, uscc=org.uscc, organisation_name=org.name),
                              organisation=org, ca=ca)
            _row, token = issue_api_token(admin, person, "opening benchmark")
            bidders.append({"index": i, "organisation_id": org.id, "person_id": person.id, "uscc": org.uscc,
                            "token": token, "key_path": _write_key(key_dir / f"bidder-{i:04d}.pem", key)})
            if i % 50 == 49:
                db.session.commit()
        db.session.commit()
        out = {"tenderer_id": tenderer.id, "staff_id": staff.id, "supervisor_id": supervisor.id,
               "custodian_ids": custodians, "custodian_keys": custodian_keys, "bidders": bidders}
        db.session.remove()
    return out


def publish(env: dict[str, str], parties: dict, code: str, mode: str = "bidder_then_custodians") -> TenderRun:
    """A published tender with one lot, 2-of-3 opening key; its bid deadline moved to now (benchmark only)."""
    import bidding
    from core.clock import now
    from core.db import db
    from core.identity.access import actor_for
    from core.identity.models import Person

    with make_app(env).app_context():
        actor = actor_for(db.session.get(Person, parties["staff_id"]), "tenderer", parties["tenderer_id"],
                          source="bench")
        start = now()
        tender = bidding.create_tender(actor, {
            "code": code, "title": "Opening benchmark works", "regime": "works", "category": "works",
            "region": "370200", "estimated_price": Decimal("1000000.00"), "ceiling_price": Decimal("980000.00"),
            "documents_from_at": start, "documents_until_at": start + timedelta(days=10),
            "question_deadline_at": start + timedelta(days=15), "bid_deadline_at": start + timedelta(days=25),
            "bid_validity_days": 90, "decryption_mode": mode, "custodian_threshold": 2,
            "custodian_ids": parties["custodian_ids"],
            "lots": [{"title": "Lot 1", "estimated_price": Decimal("1000000.00"), "bond_amount": Decimal("0.00")}]})
        bidding.add_document(actor, tender, stream=io.BytesIO(b"opening tender documents"), filename="documents.pdf",
                             content_type="application/pdf", kind="biddingDocuments")
        bidding.publish_tender(actor, tender, expected_version=tender.version)
        db.session.commit()
        lot = tender.lots[0]
        run = TenderRun(tender.id, tender.code, lot.id, lot.code, tender.opening_public_key_pem)
        db.session.remove()
    return run


def build_zips(directory: Path, lot_code: str, count: int, mib: float) -> list[dict]:
    """``count`` bid ZIPs of about ``mib`` MiB: bid.json with a distinct price, one random document each."""
    from ebid.client import bidzip

    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(count):
        doc = directory / f"technical-{i:04d}.pdf"
        with open(doc, "wb") as fh:
            left = max(int(mib * MIB) - 2048, 1024)  # the ZIP's own headers and bid.json fill the rest
            while left:
                fh.write(os.urandom(min(left, MIB)))
                left -= min(left, MIB)
        price = f"{900000 + 17 * i}.00"
        offer = bidzip.make_offer(lot=lot_code, price=price, duration_days=365, quality="合格",
                                  manager_name="张伟", manager_certificate_no=f"鲁137{i:07d}")
        path = directory / f"bid-{i:04d}.zip"
        built = bidzip.build_bid(offer, [doc], path)
        doc.unlink()
        out.append({"index": i, "path": path, "sha256": built.sha256, "size": built.size, "price": price})
    return out


def upload_all(env: dict[str, str], run: TenderRun, parties: dict, envelopes: list) -> None:
    """Upload and finalize each envelope through the bids API, as its bidder (token), one chunk each."""
    client = make_app(env).test_client()
    for bidder, env_file in zip(parties["bidders"], envelopes, strict=True):
        body = env_file.path.read_bytes()
        headers = {"Authorization": f"Bearer {bidder['token']}", "Accept-Language": "en"}
        made = client.post(f"/api/tenders/{run.tender_id}/lots/{run.lot_id}/uploads", headers=headers,
                           json={"size": len(body), "sha256": hashlib.sha256(body).hexdigest()})
        if made.status_code != 201:
            raise RuntimeError(f"upload of bidder {bidder['index']} refused: {made.get_json()}")
        upload_id = made.get_json()["id"]
        put = client.put(f"/api/uploads/{upload_id}?offset=0", data=body,
                         headers={**headers, "Content-Type": "application/octet-stream"})
        if put.status_code != 200:
            raise RuntimeError(f"upload of bidder {bidder['index']} failed: {put.get_json()}")
        done = client.post(f"/api/uploads/{upload_id}/finalize", headers=headers)
        if done.status_code != 201:
            raise RuntimeError(f"finalize of bidder {bidder['index']} failed: {done.get_json()}")
        env_file.path.unlink()  # the platform's store holds it now


def open_hall(env: dict[str, str], run: TenderRun, parties: dict) -> None:
    """Close at the deadline (moved now), name host and supervisor, start decryption."""
    from sqlalchemy import update

    from bidding import opening
    from bidding.models import Tender
    from bidding.tasks import close_due_tenders
    from core.clock import now
    from core.db import db
    from core.identity.access import actor_for
    from core.identity.models import Person

    with make_app(env).app_context():
        db.session.execute(update(Tender).where(Tender.id == run.tender_id)
                           .values(bid_deadline_at=now() - timedelta(seconds=1)))
        db.session.commit()
        close_due_tenders()
        db.session.commit()
        host = actor_for(db.session.get(Person, parties["staff_id"]), "tenderer", parties["tenderer_id"],
                         source="bench")
        opening.name_participants(host, run.tender_id, host_id=parties["staff_id"],
                                  supervisor_ids=[parties["supervisor_id"]], window_minutes=60)
        db.session.commit()
        opening.start_decryption(host, run.tender_id)
        db.session.commit()
        db.session.remove()


def content_keys(env: dict[str, str], run: TenderRun, parties: dict) -> list[dict]:
    """What each bidder's client unwraps with its own key; the bid's public id and opening row id."""
    from cryptography.hazmat.primitives import serialization
    from sqlalchemy import select

    from bidding.opening_models import BidOpening
    from bidding.sealed_models import Bid
    from core.db import db
    from core.storage import default_store
    from crypto import envelope as E

    out = []
    with make_app(env).app_context():
        for bidder in parties["bidders"]:
            bid, row = db.session.execute(select(Bid, BidOpening).join(BidOpening, BidOpening.bid_id == Bid.id).where(
                Bid.tender_id == run.tender_id, Bid.is_current.is_(True),
                Bid.organisation_id == bidder["organisation_id"])).one()
            with default_store().open(bid.envelope_sha256) as fh:
                header = E.read_header(fh)
            own = serialization.load_pem_private_key(Path(bidder["key_path"]).read_bytes(), password=None)
            out.append({"index": bidder["index"], "public_id": bid.public_id, "opening_id": row.id,
                        "envelope_sha256": bid.envelope_sha256, "envelope_path": str(default_store().path_for(
                            bid.envelope_sha256)), "key": E.unwrap_key_part(header, own)[1],
                        "context": E.bid_context(run.code, run.lot_code, bidder["uscc"], bid.version)})
        db.session.remove()
    return out


def submit_keys(env: dict[str, str], run: TenderRun, parties: dict, keys: list[dict]) -> list[float]:
    """Each bidder sends its content key (``submit_content_key``, then commit); return the seconds of each."""
    import time

    from bidding.opening_decrypt import submit_content_key
    from core.db import db
    from core.identity.access import actor_for
    from core.identity.models import Person

    seconds = []
    with make_app(env).app_context():
        for bidder, k in zip(parties["bidders"], keys, strict=True):
            actor = actor_for(db.session.get(Person, bidder["person_id"]), "bidder", bidder["organisation_id"],
                              source="bench")
            start = time.perf_counter()
            submit_content_key(actor, run.tender_id, k["public_id"], k["key"])
            db.session.commit()
            seconds.append(time.perf_counter() - start)
        db.session.remove()
    return seconds


def opening_key(env: dict[str, str], run: TenderRun, parties: dict, out: Path) -> Path:
    """Rebuild the tender's opening key from two custodians' shares (as release_share does); write it to ``out``."""
    from cryptography.hazmat.primitives import serialization

    from bidding import opening_key as ceremony
    from bidding.models import Tender
    from core.db import db
    from crypto import shamir

    with make_app(env).app_context():
        tender = db.session.get(Tender, run.tender_id)
        shares = []
        for person_id, key_path in list(zip(parties["custodian_ids"], parties["custodian_keys"], strict=True))[:2]:
            row = ceremony.share_for(tender, person_id)
            key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
            shares.append(shamir.decrypt_share(row.encrypted_share, key, context=ceremony.share_context(
                tender.code, person_id, row.share_index)))
        private = shamir.combine(shares, serialization.load_pem_public_key(tender.opening_public_key_pem.encode()))
        db.session.remove()
    return _write_key(out, private)


def requeue(env: dict[str, str], run: TenderRun, keys: list[dict]) -> None:
    """Benchmark only: put these decrypted bids back in the queue with their bidders' keys; drop the plaintexts."""
    from sqlalchemy import select, update

    from bidding.opening_models import (
        BidOpening,
        BidOpeningStatus,
        DecryptMethod,
        OpeningPhase,
        OpeningSession,
    )
    from core.db import db
    from core.storage import default_store

    with make_app(env).app_context():
        store = default_store()
        for k in keys:
            row = db.session.get(BidOpening, k["opening_id"])
            if row.plaintext_sha256:
                store.path_for(row.plaintext_sha256).unlink(missing_ok=True)
            db.session.execute(update(BidOpening).where(BidOpening.id == k["opening_id"]).values(
                status=BidOpeningStatus.PENDING, pending_key=k["key"], pending_method=DecryptMethod.BIDDER,
                decrypted_at=None, plaintext_sha256=None, plaintext_size=None, form=None, error=None))
        db.session.execute(update(OpeningSession).where(OpeningSession.tender_id == run.tender_id).values(
            phase=OpeningPhase.DECRYPTING, decrypted_at=None))
        db.session.commit()
        assert db.session.scalar(select(OpeningSession.phase).where(
            OpeningSession.tender_id == run.tender_id)) == OpeningPhase.DECRYPTING
        db.session.remove()


def check_opened(env: dict[str, str], run: TenderRun, keys: list[dict], zips: list[dict]) -> dict:
    """Every bid of ``keys`` decrypted once, its stored plaintext the bidder's ZIP, its form the ZIP's price."""
    from bidding.opening_models import BidOpening, BidOpeningStatus, OpeningSession
    from core.db import db
    from core.storage import default_store

    problems = []
    with make_app(env).app_context():
        store = default_store()
        for k in keys:
            row = db.session.get(BidOpening, k["opening_id"])
            z = zips[k["index"]]
            if row.status != BidOpeningStatus.DECRYPTED or row.pending_key is not None:
                problems.append(f"bid {k['index']}: status {row.status.value}, error {row.error}")
            elif row.plaintext_sha256 != z["sha256"] or not store.path_for(row.plaintext_sha256).is_file():
                problems.append(f"bid {k['index']}: stored plaintext differs from the bid ZIP")
            elif (row.form or {}).get("price") != z["price"] or row.error:
                problems.append(f"bid {k['index']}: form {row.form}, error {row.error}")
        phase = db.session.get(OpeningSession, run.tender_id).phase.value
        db.session.remove()
    return {"checked": len(keys), "problems": problems, "phase": phase}


def seal(run: TenderRun, parties: dict, zips: list[dict], directory: Path) -> list:
    """Seal each bidder's ZIP with its own key and context (version 1), for the tender and the bidder."""
    from surge_setup import Bidder
    bidders = [Bidder(b["index"], b["organisation_id"], b["uscc"], b["token"], Path(b["key_path"]))
               for b in parties["bidders"]]
    return seal_envelopes(run, bidders, [z["path"] for z in zips], directory)
