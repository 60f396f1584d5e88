"""Deadline surge, part 1: the PostgreSQL database, the seeded parties, the tenders and the envelopes.

Seeding goes through ebid's own services (organisations, persons, roles, the platform CA, organisation
and custodian certificates, API tokens, tender creation and publication with the opening-key ceremony),
in this process, against the same database and data dir the gunicorn processes use. One shortcut,
benchmark only: publication enforces the statutory bid period (20 days and more), so after publishing
a tender the harness moves its ``bid_deadline_at`` to a few seconds ahead with a plain UPDATE. Nothing
else is touched behind the services' back.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import serialization  # noqa: E402

from crypto import envelope, keys  # noqa: E402

MIB = 1 << 20
CA_PASSPHRASE = "bench-surge-ca-passphrase"  # a throwaway CA made for this run, deleted with it


@dataclass(frozen=True)
class PgServer:
    """Where PostgreSQL listens (trust auth on loopback); the benchmark's database lives there."""

    host: str
    port: int
    user: str

    @classmethod
    def from_url(cls, url: str) -> PgServer:
        parts = urlsplit(url.replace("postgresql+psycopg://", "postgresql://"))
        return cls(parts.hostname or "127.0.0.1", parts.port or 5432, parts.username or "postgres")

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        out = subprocess.run(["psql", "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", database,
                              "-v", "ON_ERROR_STOP=1", "-Atc", sql], capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"psql failed: {sql}: {out.stderr.strip()}")
        return out.stdout.strip()

    def recreate(self, database: str) -> None:
        self.drop(database)
        self.psql(f'CREATE DATABASE "{database}"')

    def drop(self, database: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def server_env(database_url: str, data_dir: Path) -> dict[str, str]:
    """The environment every ebid process of the run gets (no Redis: tasks in-process, as documented)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBID_")}
    env.update(EBID_DATABASE_URL=database_url, EBID_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT),
               # 3 processes x (10 + 5) connections stay far below PostgreSQL's default max_connections (100),
               # which the machine's other users share; threads beyond that wait for a pooled connection
               EBID_DB_POOL_SIZE=os.environ.get("EBID_DB_POOL_SIZE", "10"),
               EBID_DB_MAX_OVERFLOW=os.environ.get("EBID_DB_MAX_OVERFLOW", "5"))
    return env


def migrate(env: dict[str, str]) -> int:
    """``ebid db upgrade``; returns how many differences remain between the migrated schema and the models.

    The lead generates the migrations, and the models can be ahead of them. When they are, the schema
    is rebuilt from the models (``create_all`` plus the database guards, as the test suite does), so
    that the benchmark measures the code as it stands; the caller reports it.
    """
    ebid = Path(sys.executable).with_name("ebid")
    subprocess.run([str(ebid), "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True, timeout=300)
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import text

    from core.db import db, install_database_guards
    with make_app(env).app_context():
        with db.engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata)
        if diffs:
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
            db.create_all()
            install_database_guards(db.engine)
        db.engine.dispose()
    return len(diffs)


_APPS: dict[str, object] = {}


def make_app(env: dict[str, str]):
    """The harness's own ebid app (same database and data dir as the servers), made once."""
    key = env["EBID_DATABASE_URL"] + env["EBID_DATA_DIR"]
    if key not in _APPS:
        from core.config import Settings
        from ebid.app import create_app
        _APPS[key] = create_app(Settings.from_env(data_dir=Path(env["EBID_DATA_DIR"]),
                                                  database_url=env["EBID_DATABASE_URL"]))
    return _APPS[key]


@dataclass(frozen=True)
class Bidder:
    index: int
    organisation_id: int
    uscc: str
    token: str
    key_path: Path


@dataclass(frozen=True)
class Parties:
    tenderer_person_id: int
    tenderer_id: int
    custodian_ids: list[int]
    bidders: list[Bidder]


def _pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def seed_parties(env: dict[str, str], n_bidders: int, key_dir: Path) -> Parties:
    """The platform CA, a tenderer, three key custodians and ``n_bidders`` bidder organisations.

    Every bidder organisation gets a person with the bidder role, an API token, and an organisation
    certificate whose private key is written (for this run only) to ``key_dir``.
    """
    from bidding.receipts import log_key, receipt_key
    from core.actor import Actor
    from core.db import db
    from core.identity import services as identity
    from core.identity.ca import init_ca, issue_certificate
    from core.identity.models import OrganisationKind
    from core.identity.tokens import issue_api_token
    from core.identity.uscc import make as make_uscc

    admin = Actor.system(source="bench")
    key_dir.mkdir(parents=True, exist_ok=True)
    app = make_app(env)
    with app.app_context():
        ca = init_ca(admin, app.extensions["ebid.settings"].keys_dir, CA_PASSPHRASE, kdf_log2_n=14)
        receipt_key(), log_key()  # made once here, not raced for by the server processes
        tenderer = identity.register_organisation(admin, make_uscc("91370200MB0000000"), "Surge Tenderer Co.",
                                                  OrganisationKind.TENDERER, region="370200")
        staff = identity.create_person(admin, "tenderer@surge.test", "Tenderer Staff")
        identity.grant_role(admin, staff, "tenderer", tenderer)
        custodians = []
        for i in range(3):
            person = identity.create_person(admin, f"custodian{i}@surge.test", f"Custodian {i}")
            identity.grant_role(admin, person, "custodian")
            key = keys.generate_private_key()
            issue_certificate(admin, keys.make_csr(key, person.name, email=person.email), person=person, ca=ca)
            custodians.append(person.id)
        db.session.commit()
        bidders = []
        for i in range(n_bidders):
            org = identity.register_organisation(admin, make_uscc(f"91370200MC{i:07d}"), f"Surge Bidder {i:04d}",
                                                 OrganisationKind.COMPANY, region="370200")
            person = identity.create_person(admin, f"bidder{i}@surge.test", f"Bidder {i:04d}")
            identity.grant_role(admin, person, "bidder", org)
            key = keys.generate_private_key()
            issue_certificate(admin, keys.make_csr(key, org.name, uscc=org.uscc, organisation_name=org.name),
                              organisation=org, ca=ca)
            path = key_dir / f"bidder-{i:04d}.pem"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(_pem(key))
            _row, token = issue_api_token(admin, person, "deadline surge benchmark")
            bidders.append(Bidder(i, org.id, org.uscc, token, path))
            if i % 50 == 49:
                db.session.commit()
        db.session.commit()
        parties = Parties(staff.id, tenderer.id, custodians, bidders)
        db.session.remove()
    return parties


@dataclass(frozen=True)
class TenderRun:
    tender_id: int
    code: str
    lot_id: int
    lot_code: str
    opening_public_key_pem: str


def publish_tender(env: dict[str, str], parties: Parties, code: str) -> TenderRun:
    """A published tender with one lot, decryption by the bidder with custodian fallback (2 of 3)."""
    import bidding
    from core.clock import now
    from core.db import db
    from core.identity.access import actor_for
    from core.identity.models import Person

    with make_app(env).app_context():
        person = db.session.get(Person, parties.tenderer_person_id)
        actor = actor_for(person, "tenderer", parties.tenderer_id, source="bench")
        start = now()
        tender = bidding.create_tender(actor, {
            "code": code, "title": "Deadline surge benchmark works", "regime": "works", "category": "works",
            "region": "370200", "estimated_price": Decimal("1000000.00"), "ceiling_price": Decimal("980000.00"),
            "documents_from_at": start, "documents_until_at": start + timedelta(days=10),
            "question_deadline_at": start + timedelta(days=15), "bid_deadline_at": start + timedelta(days=25),
            "bid_validity_days": 90, "decryption_mode": "bidder_then_custodians", "custodian_threshold": 2,
            "custodian_ids": parties.custodian_ids,
            "lots": [{"title": "Lot 1", "estimated_price": Decimal("1000000.00"), "bond_amount": Decimal("0.00")}]})
        bidding.add_document(actor, tender, stream=io.BytesIO(b"surge tender documents"), filename="documents.pdf",
                             content_type="application/pdf", kind="biddingDocuments")
        bidding.publish_tender(actor, tender, expected_version=tender.version)
        db.session.commit()
        lot = tender.lots[0]
        run = TenderRun(tender.id, tender.code, lot.id, lot.code, tender.opening_public_key_pem)
        db.session.remove()
    return run


def move_deadline(env: dict[str, str], tender_id: int, deadline: datetime) -> None:
    """Benchmark only: put the bid deadline at ``deadline`` (see the module docstring)."""
    from sqlalchemy import update

    from bidding.models import Tender
    from core.db import db
    with make_app(env).app_context():
        db.session.execute(update(Tender).where(Tender.id == tender_id).values(bid_deadline_at=deadline))
        db.session.commit()
        db.session.remove()


def write_plaintexts(directory: Path, count: int, mib: float) -> list[Path]:
    """``count`` distinct random plaintexts of ``mib`` MiB (every envelope is still sealed on its own)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = directory / f"plain-{i:02d}.bin"
        path.write_bytes(os.urandom(int(mib * MIB)))
        paths.append(path)
    return paths


@dataclass(frozen=True)
class Envelope:
    bidder: int
    path: Path
    sha256: str
    size: int


def _seal_one(job: tuple) -> tuple[int, str, int]:
    index, plain, out, key_path, tender_pem, context = job
    signer = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
    tender_key = serialization.load_pem_public_key(tender_pem.encode())
    info = envelope.seal_file(plain, out, signer=signer, context=context, recipients=[
        envelope.Recipient(envelope.ROLE_TENDER, tender_key), envelope.Recipient(envelope.ROLE_BIDDER, signer.public_key())])
    return index, info.sha256.hex(), info.size


def seal_envelopes(run: TenderRun, bidders: list[Bidder], plaintexts: list[Path], directory: Path,
                   workers: int = 2) -> list[Envelope]:
    """Seal one envelope per bidder (its own key and context, version 1) for ``run``'s tender and lot."""
    directory.mkdir(parents=True, exist_ok=True)
    jobs = [(b.index, plaintexts[b.index % len(plaintexts)], directory / f"bid-{b.index:04d}.ebid", b.key_path,
             run.opening_public_key_pem, envelope.bid_context(run.code, run.lot_code, b.uscc, 1)) for b in bidders]
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        sealed = {i: (sha, size) for i, sha, size in pool.map(_seal_one, jobs, chunksize=8)}
    return [Envelope(b.index, directory / f"bid-{b.index:04d}.ebid", *sealed[b.index]) for b in bidders]
