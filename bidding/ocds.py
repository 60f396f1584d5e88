"""Open data (开放数据): OCDS 1.1 releases and release packages built from tenders.

Pure functions: a tender (with its lots, documents, amendments and organisations loaded) in, a dict out;
no database writes, no request, no clock. One release per tender describes its current public state
(a snapshot); the release ``id`` is derived from the release's content, so it changes whenever that
state changes and stays the same when nothing changed. The field mapping is in docs/open-data.md.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from bidding.models import Amendment, Lot, Tender, TenderDocument, TenderStatus
from bidding.ocds_schema import codelist
from core.clock import as_utc
from core.identity.models import Organisation

OCDS_VERSION = "1.1"
LANGUAGE = "zh"
LOTS_EXTENSION = ("https://raw.githubusercontent.com/open-contracting-extensions/"
                  "ocds_lots_extension/v1.1.5/extension.json")
USCI_SCHEME = "CN-USCI"
"""org-id.guide list code of the unified social credit identifier (统一社会信用代码, USCC)."""

TENDER_STATUS: dict[TenderStatus, str] = {
    TenderStatus.PUBLISHED: "active",
    TenderStatus.OPENING: "active",       # bids closed, the process goes on
    TenderStatus.EVALUATION: "active",
    TenderStatus.PUBLICITY: "active",     # candidates shown, award not final yet
    TenderStatus.AWARDED: "complete",
    TenderStatus.FAILED: "unsuccessful",  # 流标
    TenderStatus.CANCELLED: "cancelled",  # 终止
}
"""Our status -> the closed tenderStatus codelist. Drafts have no entry: they are never exported."""

PAST_BIDDING = frozenset({TenderStatus.OPENING, TenderStatus.EVALUATION, TenderStatus.PUBLICITY,
                          TenderStatus.AWARDED, TenderStatus.FAILED})

REGIME_METHOD_DETAILS = {"works": "公开招标（工程建设项目）", "gp": "公开招标（政府采购）"}

_CENT = Decimal("0.01")


class NotExportable(ValueError):
    """The tender (a draft, or never published) or the selection cannot be published as open data."""


def is_exportable(tender: Tender) -> bool:
    """Return whether ``tender`` has been published and may appear in open data."""
    return tender.status in TENDER_STATUS and tender.published_at is not None


def ocid_for(tender: Tender, ocid_prefix: str) -> str:
    """Return the open contracting id of ``tender``: ``{prefix}-{code}``."""
    return f"{ocid_prefix}-{tender.code}"


def timestamp(value: datetime) -> str:
    """Return ``value`` as an RFC 3339 UTC date-time to the second, e.g. ``2025-03-01T02:00:00Z``."""
    return as_utc(value).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def money(amount: Decimal) -> int | float:
    """Return ``amount`` as a JSON number whose decimal text is exactly the amount (to the fen).

    Whole amounts become ints (any size); others a float whose shortest repr is the same decimal,
    which holds up to 15 significant digits. Larger amounts with fen raise rather than lose a digit.
    """
    value = Decimal(amount).quantize(_CENT)
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    if Decimal(repr(as_float)) != value:
        raise ValueError(f"amount {value} has more digits than a JSON number carries exactly")
    return as_float


def release_tag(tender: Tender) -> list[str]:
    """Return the releaseTag of the tender's current snapshot: what changed last."""
    if tender.status == TenderStatus.CANCELLED:
        return ["tenderCancellation"]
    if tender.status in PAST_BIDDING:
        return ["tenderUpdate"]  # amendments are only possible before the bid deadline
    if tender.amendments:
        return ["tenderAmendment"]
    return ["tender"]


def party_id(org: Organisation) -> str:
    """Return the party id of ``org``: its org-id identifier ``CN-USCI-{USCC}``."""
    return f"{USCI_SCHEME}-{org.uscc}"


def _party(org: Organisation, roles: list[str]) -> dict[str, Any]:
    party: dict[str, Any] = {
        "id": party_id(org),
        "name": org.name,
        "identifier": {"scheme": USCI_SCHEME, "id": org.uscc, "legalName": org.name},
        "roles": roles,
    }
    if org.region:
        party["address"] = {"region": org.region}  # GB/T 2260 administrative division code
    return party


def _parties(tender: Tender) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, str]]:
    """Return parties, the buyer reference and the procuring entity reference.

    The tenderer (招标人) is the buyer; the agency (招标代理机构) manages the procurement and is the
    procuring entity; without an agency the tenderer is both.
    """
    tenderer, agency = tender.tenderer, tender.agency
    buyer = {"id": party_id(tenderer), "name": tenderer.name}
    if agency is None or agency.id == tenderer.id:
        return [_party(tenderer, ["buyer", "procuringEntity"])], buyer, dict(buyer)
    parties = [_party(tenderer, ["buyer"]), _party(agency, ["procuringEntity"])]
    return parties, buyer, {"id": party_id(agency), "name": agency.name}


def _value(amount: Decimal, currency: str) -> dict[str, Any]:
    return {"amount": money(amount), "currency": currency}


def _period(start: datetime | None, end: datetime | None) -> dict[str, str]:
    period = {}
    if start is not None:
        period["startDate"] = timestamp(start)
    if end is not None:
        period["endDate"] = timestamp(end)
    return period


def lot_id(lot: Lot) -> str:
    """Return the OCDS lot id: the lot number (标段号), unique within the tender."""
    return str(lot.number)


def _lots_and_items(tender: Tender, status: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    lots, items = [], []
    for lot in tender.lots:
        entry: dict[str, Any] = {"id": lot_id(lot), "title": lot.title, "status": status,
                                 "value": _value(lot.estimated_price, tender.currency)}
        if lot.description:
            entry["description"] = lot.description
        lots.append(entry)
        items.append({"id": lot_id(lot), "description": lot.title, "relatedLot": lot_id(lot)})
    return lots, items


def is_public_document(doc: TenderDocument) -> bool:
    """Return whether ``doc`` has been issued (not staged) and not withdrawn."""
    return doc.published_at is not None and not doc.is_withdrawn


def public_documents(tender: Tender) -> list[TenderDocument]:
    """Return the tender's issued documents: staged and withdrawn files stay out."""
    return [doc for doc in tender.documents if is_public_document(doc)]


def document_type(doc: TenderDocument) -> str:
    """Map our document kind to the documentType codelist.

    A kind that already is a code (e.g. ``tenderNotice``) or its snake_case spelling is used as is;
    other files of an amendment are ``clarifications``, any other file ``biddingDocuments``.
    """
    kind = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), doc.kind or "")
    if kind in codelist("documentType"):
        return kind
    return "clarifications" if doc.amendment_id is not None else "biddingDocuments"


def document_url(base_url: str, tender: Tender, doc: TenderDocument) -> str:
    """Return the public download URL of ``doc``."""
    return f"{base_url.rstrip('/')}/tenders/{tender.id}/documents/{doc.id}"


def _document(tender: Tender, doc: TenderDocument, base_url: str) -> dict[str, Any]:
    return {
        "id": str(doc.id),
        "documentType": document_type(doc),
        "title": doc.filename,
        "description": f"SHA-256: {doc.sha256}; {doc.size} bytes",
        "url": document_url(base_url, tender, doc),
        "datePublished": timestamp(doc.published_at),
        "format": doc.content_type,
    }


def _amendment(amendment: Amendment) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": str(amendment.number), "date": timestamp(amendment.published_at),
                             "rationale": amendment.summary}
    details = []
    if amendment.new_deadline_at is not None:
        before = timestamp(amendment.previous_deadline_at) if amendment.previous_deadline_at else "—"
        details.append(f"投标截止时间：{before} → {timestamp(amendment.new_deadline_at)}")
    if amendment.affects_bids:
        details.append("可能影响投标文件编制")
    files = [str(doc.id) for doc in amendment.documents if is_public_document(doc)]
    if files:
        details.append("附件文件（tender.documents id）：" + "、".join(files))
    if details:
        entry["description"] = "；".join(details)
    return entry


def release_date(tender: Tender) -> datetime:
    """Return when the tender's public state last changed (the release ``date``)."""
    moments = [tender.published_at, tender.cancelled_at, tender.updated_at,
               *(a.published_at for a in tender.amendments),
               *(d.published_at for d in public_documents(tender))]
    return max(as_utc(m) for m in moments if m is not None)


def _tender_section(tender: Tender, base_url: str, procuring_entity: dict[str, str]) -> dict[str, Any]:
    status = TENDER_STATUS[tender.status]
    section: dict[str, Any] = {"id": tender.code, "title": tender.title}
    if tender.description:
        section["description"] = tender.description
    section.update({
        "status": status,
        "procuringEntity": procuring_entity,
        "value": _value(tender.estimated_price, tender.currency),
        "procurementMethod": "open",
        "procurementMethodDetails": REGIME_METHOD_DETAILS.get(str(tender.regime), "公开招标"),
        "mainProcurementCategory": str(tender.category),
        "submissionMethod": ["electronicSubmission"],
    })
    start = tender.documents_from_at or tender.published_at
    if tender_period := _period(start, tender.bid_deadline_at):
        section["tenderPeriod"] = tender_period
    if tender.question_deadline_at is not None:
        section["enquiryPeriod"] = _period(start, tender.question_deadline_at)
    lots, items = _lots_and_items(tender, status)
    if lots:
        section["items"] = items
        section["lots"] = lots
    if documents := [_document(tender, doc, base_url) for doc in public_documents(tender)]:
        section["documents"] = documents
    if tender.amendments:
        section["amendments"] = [_amendment(a) for a in tender.amendments]
    return section


def _content_digest(release: dict[str, Any]) -> str:
    canonical = json.dumps(release, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# Awards come from the evaluation package above bidding: ``fn(tender) -> [{"id", "title", "status" (award
# status codelist), "date" (datetime), "amount" (Decimal | None), "supplier" (Organisation | None),
# "lot" (Lot)}]``; installed with :func:`register_awards_provider`.
AwardsProvider = Callable[[Tender], list[dict[str, Any]]]
_awards_providers: list[AwardsProvider] = []


def register_awards_provider(fn: AwardsProvider) -> AwardsProvider:
    """Install the source of a tender's awards (the evaluation package calls this at import)."""
    if fn not in _awards_providers:
        _awards_providers.append(fn)
    return fn


def _awards(tender: Tender) -> list[dict[str, Any]]:
    return [a for fn in _awards_providers for a in fn(tender)]


def _award(tender: Tender, award: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": award["id"], "title": award["title"], "status": award["status"],
                           "date": timestamp(award["date"]), "relatedLots": [lot_id(award["lot"])]}
    if award.get("amount") is not None:
        out["value"] = _value(award["amount"], tender.currency)
    if award.get("supplier") is not None:
        out["suppliers"] = [{"id": party_id(award["supplier"]), "name": award["supplier"].name}]
    return out


def _with_suppliers(parties: list[dict[str, Any]], awards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add each awarded or candidate supplier to the parties (once, with the ``supplier`` role)."""
    known = {p["id"]: p for p in parties}
    for award in awards:
        org = award.get("supplier")
        if org is None:
            continue
        party = known.get(party_id(org))
        if party is None:
            party = known[party_id(org)] = _party(org, ["supplier"])
            parties.append(party)
        elif "supplier" not in party["roles"]:
            party["roles"].append("supplier")
    return parties


def build_release(tender: Tender, *, ocid_prefix: str, base_url: str) -> dict[str, Any]:
    """Return the OCDS 1.1 release describing the current public state of ``tender``.

    Raises :class:`NotExportable` for drafts and tenders never published.
    """
    if not is_exportable(tender):
        raise NotExportable(f"tender {tender.code} is not published")
    ocid = ocid_for(tender, ocid_prefix)
    date = release_date(tender)
    parties, buyer, procuring_entity = _parties(tender)
    body: dict[str, Any] = {
        "date": timestamp(date),
        "tag": release_tag(tender),
        "initiationType": "tender",
        "language": LANGUAGE,
        "parties": parties,
        "buyer": buyer,
        "tender": _tender_section(tender, base_url, procuring_entity),
    }
    awards = _awards(tender)
    if awards:
        body["parties"] = _with_suppliers(parties, awards)
        body["awards"] = [_award(tender, a) for a in awards]
        body["tag"] = ["award"] if tender.status != TenderStatus.CANCELLED else body["tag"]
        latest = max(as_utc(a["date"]) for a in awards)
        if latest > as_utc(date):
            date = latest
            body["date"] = timestamp(date)
    digest = _content_digest({"ocid": ocid, **body})
    return {"ocid": ocid, "id": f"{ocid}-{date.strftime('%Y%m%dT%H%M%SZ')}-{digest[:12]}", **body}


def build_release_package(tenders: Iterable[Tender], *, ocid_prefix: str, base_url: str,
                          publisher_name: str, published_date: datetime | None = None,
                          uri: str | None = None) -> dict[str, Any]:
    """Return an OCDS 1.1 release package with one release per tender.

    ``published_date`` defaults to the latest release date, as OCDS asks of packages generated on
    demand, so the same data always gives the same package. ``uri`` defaults to the bulk endpoint.
    Raises :class:`NotExportable` when there is no tender (a package needs at least one release).
    """
    releases = [build_release(t, ocid_prefix=ocid_prefix, base_url=base_url) for t in tenders]
    if not releases:
        raise NotExportable("no published tender to export")
    base = base_url.rstrip("/")
    package: dict[str, Any] = {
        "uri": uri or f"{base}/api/ocds/releases",
        "version": OCDS_VERSION,
        "publishedDate": (timestamp(published_date) if published_date is not None
                          else max(r["date"] for r in releases)),
        "publisher": {"name": publisher_name, "uri": base},
    }
    if any("lots" in r["tender"] for r in releases):
        package["extensions"] = [LOTS_EXTENSION]
    package["releases"] = releases
    return package


def to_json(package: dict[str, Any]) -> str:
    """Serialise a package the one way both the API and the CLI publish it (UTF-8 text, indented)."""
    return json.dumps(package, ensure_ascii=False, indent=2) + "\n"
