"""The demo's keys, certificates and sealed bids (``ebid demo``).

Before the demo tender is published, every key custodian (密钥保管人) gets a personal certificate (the
opening key ceremony encrypts a share to each), and each of the five bidders an organisation certificate,
from the platform CA. If there is no CA yet, the demo creates one with a generated passphrase. Then each
bidder builds its bid ZIP (bid.json and a PDF), seals it on "its own machine" with the same code as
``ebid client seal``, and submits it over the real submission services (upload, finalize, receipt, log):
one bidder replaces its bid for lot 1 with a cheaper one, one withdraws its bid for lot 2.

DEMO ONLY: the CA passphrase, the private keys (encrypted under a generated passphrase) and an API token
for bidder 1 are kept in ``EBID_DATA_DIR/demo`` (mode 0600) so the demo can be replayed and explored.
A real platform never holds a CA passphrase, or any bidder's or custodian's private key.
Running the demo again changes nothing that already exists.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import click
from cryptography import x509
from flask import current_app
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas
from sqlalchemy import func, select

import bidding
from bidding import sealed_queries, submissions
from bidding.models import Lot, Tender, TenderStatus
from core.actor import Actor
from core.clock import as_utc, now
from core.db import db
from core.errors import DomainError
from core.identity import ca as platform_ca
from core.identity.access import actor_for
from core.identity.models import Certificate, CertificateSubject, Organisation, Person, Role
from core.identity.tokens import issue_api_token
from crypto import keys
from ebid.client import bidzip
from ebid.client.errors import ClientError
from ebid.client.sealing import seal_for

DEMO_ACTOR = Actor.system(source="demo")
KDF = 15  # demo keys only: quick to open, still scrypt
CHUNK = 4 << 20
BIDDERS = 5
CUSTODIANS = 3
OPENING_SIGNERS = ("agent@demo.ebid", "supervisor@demo.ebid")


@dataclass(frozen=True)
class BidPlan:
    """What demo bidder ``n`` offers: price as a share of the lot's estimate, duration, project manager."""

    factor: Decimal
    days: tuple[int, int]
    manager: str
    certificate_no: str


PLANS = {
    1: BidPlan(Decimal("0.9432"), (360, 175), "王建华", "鲁1372015201101"),
    2: BidPlan(Decimal("0.9520"), (350, 170), "刘志强", "鲁1372016202312"),
    3: BidPlan(Decimal("0.9580"), (365, 180), "陈海涛", "鲁1372017203523"),
    4: BidPlan(Decimal("0.9350"), (355, 165), "杨立新", "鲁1012018204734"),
    5: BidPlan(Decimal("0.9489"), (340, 160), "黄文斌", "鲁1062019205945"),
}
REPLACES = (2, 1, Decimal("0.9290"))  # bidder 2 replaces its bid for lot 1 with this cheaper one
WITHDRAWS = (5, 2)  # bidder 5 withdraws its bid for lot 2


def demo_dir() -> Path:
    path = Path(current_app.extensions["ebid.settings"].data_dir) / "demo"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _secret(name: str) -> str:
    """A generated secret kept in the demo folder (mode 0600), made on first use."""
    path = demo_dir() / name
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    value = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    return value


def ca_unlocker(created: list[str]) -> Callable[[], platform_ca.PlatformCA]:
    """The CA, created (generated passphrase) or unlocked when a certificate is first needed."""
    cache: list[platform_ca.PlatformCA] = []

    def unlock() -> platform_ca.PlatformCA:
        if cache:
            return cache[0]
        directory = platform_ca.keys_dir()
        if not (directory / platform_ca.CA_CERT_FILE).exists():
            authority = platform_ca.init_ca(DEMO_ACTOR, directory, _secret("ca-passphrase"))
            created.append(f"platform CA (its passphrase is kept for the demo in {demo_dir() / 'ca-passphrase'})")
        else:
            passphrase = os.environ.get("EBID_CA_PASSPHRASE") or \
                ((demo_dir() / "ca-passphrase").exists() and _secret("ca-passphrase"))
            if not passphrase:
                raise click.ClickException("The platform CA exists but the demo does not know its passphrase: set "
                                           "EBID_CA_PASSPHRASE and run the demo again.")
            authority = platform_ca.load_ca(directory, passphrase)
        cache.append(authority)
        return authority
    return unlock


def _holder_certificate(person: Person, org: Organisation | None, key: keys.PrivateKey) -> Certificate | None:
    kind = CertificateSubject.ORGANISATION if org is not None else CertificateSubject.PERSON
    rows = db.session.scalars(select(Certificate).where(
        Certificate.person_id == person.id, Certificate.subject_kind == kind, Certificate.revoked_at.is_(None),
        Certificate.organisation_id == (org.id if org is not None else None)).order_by(Certificate.id.desc()))
    public = keys.public_key_pem(key)
    for row in rows:
        cert = x509.load_pem_x509_certificate(row.pem.encode())
        if keys.public_key_pem(cert.public_key()) == public and as_utc(row.not_after) > now():
            return row
    return None


def ensure_certificate(person: Person, org: Organisation | None, ca: Callable[[], platform_ca.PlatformCA],
                       created: list[str]) -> tuple[keys.PrivateKey, x509.Certificate]:
    """The demo holder's key (kept encrypted in the demo folder) and a valid certificate for it."""
    stem = person.email.split("@")[0] + (f"-{org.uscc}" if org is not None else "")
    key_path = demo_dir() / "keys" / f"{stem}.key"
    key = None
    if key_path.exists():
        key = keys.decrypt_private_key(key_path.read_bytes(), _secret("key-passphrase"))
        row = _holder_certificate(person, org, key)
        if row is not None:
            return key, x509.load_pem_x509_certificate(row.pem.encode())
    if key is None:
        key = keys.generate_private_key()
        key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(keys.encrypt_private_key(key, _secret("key-passphrase"), log2_n=KDF))
    if org is not None:
        csr = keys.make_csr(key, org.name, uscc=org.uscc, organisation_name=org.name)
    else:
        csr = keys.make_csr(key, person.name, email=person.email)
    row = platform_ca.issue_certificate(DEMO_ACTOR, csr, person=person, organisation=org, ca=ca())
    (key_path.with_suffix(".cert.pem")).write_text(row.pem, encoding="utf-8")
    created.append(f"certificate for {org.name if org is not None else person.name} (serial {row.serial})")
    return key, x509.load_pem_x509_certificate(row.pem.encode())


def prepare_demo_keys(people: dict[str, Person], orgs: dict[str, Organisation], created: list[str]) -> None:
    """Certificates for the custodians (needed to publish), the bidders (to sign bids), host and supervisor."""
    ca = ca_unlocker(created)
    for i in range(1, CUSTODIANS + 1):
        ensure_certificate(people[f"custodian{i}@demo.ebid"], None, ca, created)
    for i in range(1, BIDDERS + 1):
        ensure_certificate(people[f"bidder{i}@demo.ebid"], orgs[f"bidder{i}"], ca, created)
    for email in OPENING_SIGNERS:  # the opening's host and supervisor sign the opening record with these
        ensure_certificate(people[email], None, ca, created)
    db.session.flush()


def bid_pdf(lines: list[str], author: str = "") -> bytes:
    """A one-page bid letter (投标函) for the demo's bid ZIPs, authored by its bidder (PDF metadata)."""
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4, invariant=1)
    if author:  # each bidder's own documents carry its own author and authoring program
        pdf.setAuthor(author)
        pdf.setCreator(f"{author} 投标文件编制")
    pdf.setFont("STSong-Light", 16)
    pdf.drawString(60, 780, "投标函")
    pdf.setFont("STSong-Light", 11)
    for n, line in enumerate(lines):
        pdf.drawString(60, 750 - 20 * n, line)
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


def submit_envelope(actor: Actor, tender: Tender, lot: Lot, envelope: Path) -> None:
    """The submission services, in the order and transactions the upload API uses."""
    data = envelope.read_bytes()
    upload = submissions.create_upload(actor, tender, lot, size=len(data), sha256=hashlib.sha256(data).hexdigest())
    db.session.commit()
    for offset in range(0, len(data), CHUNK):
        submissions.append_chunk(actor, upload, offset, data[offset:offset + CHUNK])
        db.session.commit()
    submissions.finalize(actor, upload)


def _seal_and_submit(n: int, person: Person, org: Organisation, tender: Tender, lot: Lot, factor: Decimal,
                     key: keys.PrivateKey, cert: x509.Certificate) -> int:
    actor = actor_for(person, Role.BIDDER, org.id, source="demo")
    version = submissions.next_version(lot.id, org.id)
    plan = PLANS[n]
    price = (lot.estimated_price * factor).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    days = plan.days[0] if lot.number == 1 else plan.days[1]
    folder = demo_dir() / "bids" / f"bidder{n}"
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"lot{lot.code}-v{version}"
    letter = stem.with_name(f"投标函-{lot.code}-v{version}.pdf")
    letter.write_bytes(bid_pdf([f"致:{tender.tenderer.name}", f"项目:{tender.title}", f"标段:{lot.code} {lot.title}",
                                f"投标人:{org.name}", f"投标报价:人民币 {price:,.2f} 元", f"工期:{days} 日历天",
                                "质量标准:合格", f"项目经理:{plan.manager}(注册证书号 {plan.certificate_no})"],
                               author=org.name))
    offer = bidzip.make_offer(lot=lot.code, price=str(price), duration_days=days, quality="合格",
                              manager_name=plan.manager, manager_certificate_no=plan.certificate_no)
    zip_path = stem.with_suffix(".zip")
    bidzip.build_bid(offer, [letter], zip_path)
    params = sealed_queries.sealing_parameters(tender)
    sealed = seal_for(params, lot_id=lot.id, bid_path=zip_path, key=key, cert=cert, out=stem.with_suffix(".ebe"),
                      version=version, server=current_app.extensions["ebid.settings"].public_base_url,
                      organisation_id=org.id)
    db.session.commit()  # the submission takes the tender lock as the first statement of its transactions
    submit_envelope(actor, tender, lot, sealed.path)
    return version


def submit_demo_bids(tender: Tender | None, people: dict[str, Person], orgs: dict[str, Organisation],
                     created: list[str]) -> None:
    """Each demo bidder seals and submits a bid for each lot; bidder 2 replaces one, bidder 5 withdraws one."""
    if tender is None or tender.status != TenderStatus.PUBLISHED or bidding.is_closed(tender):
        return
    ca = ca_unlocker(created)
    for n in range(1, BIDDERS + 1):
        person, org = people[f"bidder{n}@demo.ebid"], orgs[f"bidder{n}"]
        key, cert = ensure_certificate(person, org, ca, created)
        for lot in tender.lots:
            count = db.session.scalar(select(func.count()).select_from(bidding.Bid).where(
                bidding.Bid.lot_id == lot.id, bidding.Bid.organisation_id == org.id))
            try:
                if count == 0:
                    _seal_and_submit(n, person, org, tender, lot, PLANS[n].factor, key, cert)
                    created.append(f"{org.name}: sealed bid for lot {lot.code} submitted")
                    count = 1
                if (n, lot.number) == REPLACES[:2] and count == 1:
                    _seal_and_submit(n, person, org, tender, lot, REPLACES[2], key, cert)
                    created.append(f"{org.name}: bid for lot {lot.code} replaced by version 2")
                current = bidding.current_bid(lot.id, org.id)
                if (n, lot.number) == WITHDRAWS and current is not None and current.version == 1:
                    bidding.withdraw(actor_for(person, Role.BIDDER, org.id, source="demo"), tender, lot)
                    db.session.commit()
                    created.append(f"{org.name}: bid for lot {lot.code} withdrawn")
            except (DomainError, ClientError) as exc:
                db.session.rollback()
                message = exc.to_dict()["message"] if isinstance(exc, DomainError) else str(exc)
                created.append(f"{org.name}: lot {lot.code} not submitted ({message})")
    _bidder_token(people["bidder1@demo.ebid"], created)


def _bidder_token(person: Person, created: list[str]) -> None:
    """An API token for bidder 1, so ``ebid client status`` can be tried against the demo."""
    path = demo_dir() / "bidder1.token"
    if path.exists():
        return
    _token, plaintext = issue_api_token(actor_for(person), person, "demo: ebid client")
    db.session.commit()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(plaintext + "\n")
    created.append(f"API token of bidder1@demo.ebid in {path} (try: EBID_TOKEN=$(cat {path}) ebid client status "
                   f"--server URL)")


def demo_secrets_note() -> str:
    return (f"Demo only: the CA passphrase, the demo's private keys (encrypted) and a bidder's API token are kept in "
            f"{demo_dir()} (mode 0600). A real platform never holds a CA passphrase or anyone's private key.")
