"""Collusion screens (串通投标预警): warnings for supervisors from the facts of a tender's bids.

Pure functions: the facts of the bids in, a sorted list of :class:`Finding` out. No Flask app, no
database, no clock. A finding is evidence for a human (监督人员), never a decision: the committee and the
supervisors judge it.

Two kinds of screens:

* ``legal``: the indicators under which bids are *deemed* collusive (视为串通投标, 《招标投标法实施条例》
  §40) and the platform practice built on them (the same CA key, network address or hardware id at
  encryption or upload): the same upload address (``same_address``), the same device (``same_device``),
  the same signing key (``same_signer``), bonds paid from the same account (``same_payer``), the same
  project manager (``same_manager``), identical files (``identical_document``), near-identical texts
  (``similar_document``, in :mod:`supervision.similarity`) and the same authoring metadata
  (``same_metadata``, ibid.). They compare the bids of *different* organisations in the same lot.
* ``statistical``: the price screens of the bid-rigging literature (:mod:`supervision.price_screens`):
  ``low_cv``, ``relative_distance``, ``kurtosis``, ``skewness``, ``regular_spacing``. Their thresholds
  are set so that each fires on at most 5 % of simulated clean tenders (``benchmarks/collusion_fpr.py``).

Message titles and explanations are ``N_`` msgids; the caller translates them when shown and fills the
explanation's placeholders from ``Finding.params``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from core.i18n import N_

LEGAL, STATISTICAL = "legal", "statistical"

# every finding code, in the order findings are listed
CODES = (
    "same_address", "same_device", "same_signer", "same_payer", "same_manager",
    "identical_document", "similar_document", "same_metadata",
    "low_cv", "relative_distance", "kurtosis", "skewness", "regular_spacing",
)
LEGAL_CODES = CODES[:8]
STATISTICAL_CODES = CODES[8:]

# authoring-tool and placeholder values that many unrelated computers share (lower case)
GENERIC_METADATA = frozenset({
    "", "unknown", "none", "null", "-", "user", "users", "admin", "administrator", "owner", "author", "pc",
    "lenovo", "dell", "hp", "asus", "acer", "microsoft", "microsoft word", "microsoft office word",
    "microsoft office user", "microsoft® word 2010", "microsoft® word 2013", "microsoft® word 2016",
    "microsoft® word for microsoft 365", "microsoft: print to pdf", "microsoft® excel® 2016", "wps",
    "wps office", "wps 文字", "wps 表格", "kingsoft", "libreoffice", "libreoffice writer", "openoffice",
    "adobe acrobat", "adobe pdf library", "acrobat distiller", "pdf", "skia/pdf", "word", "excel", "china",
    "微软用户", "微软中国", "用户", "作者", "管理员", "系统管理员", "雨林木风", "深度技术", "番茄花园",
    # the defaults of PDF libraries that write documents without asking (reportlab: "anonymous",
    # "unspecified", "untitled" and, in its reproducible mode, one fixed creation time for every file)
    "anonymous", "unspecified", "untitled", "d:20000101000000+00'00'",
})


@dataclass(frozen=True)
class DocumentFact:
    """One file of a bid's ZIP (投标文件中的一个文件): its hash, size, text and authoring metadata."""

    name: str
    sha256: str
    size: int
    text: str | None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BidFacts:
    """What the platform knows about one bid (投标) that the screens compare."""

    bid_id: int
    bidder: str
    organisation_id: int
    lot: str
    price: Decimal | None
    upload_addresses: tuple[str, ...] = ()
    upload_devices: tuple[str, ...] = ()
    signer_key_id: str | None = None
    guarantee_payers: tuple[str, ...] = ()
    project_manager: str | None = None
    documents: tuple[DocumentFact, ...] = ()


@dataclass(frozen=True)
class ScreenParams:
    """Every threshold of the screens (预警阈值), with its default and where the default comes from.

    The statistical defaults were chosen with ``benchmarks/collusion_fpr.py`` so that each screen fires on
    at most 5 % of simulated clean tenders (independent bidders, discounts drawn around 5 % with a
    standard deviation of 3–4 %); ``docs/collusion-screens.md`` lists the measured rates.
    """

    # -- legal screens
    # addresses and devices every bidder may share, e.g. the trading centre's public terminals (NAT)
    ignored_addresses: frozenset[str] = frozenset()
    ignored_devices: frozenset[str] = frozenset()
    # files smaller than this are not compared (an empty file is identical everywhere)
    identical_document_min_size: int = 1
    # similar_document: Jaccard similarity of character shingles (Broder 1997); 0.8 is near-identical
    similarity_min: Decimal = Decimal("0.8")
    similarity_min_chars: int = 1000  # shorter texts (cover pages, forms) are too generic to compare
    shingle_size: int = 5  # characters per shingle; 5 suits Chinese text (2–4 characters a word)
    shingle_sample: int = 4  # keep 1 shingle hash in N (deterministic, by hash value): bounded memory
    # same_metadata: values ignored besides GENERIC_METADATA, e.g. the tender's own template author
    ignored_metadata_values: frozenset[str] = frozenset()
    # -- statistical screens (Imhof, Karagök & Rutz 2018; Huber & Imhof 2019)
    cv_min_bids: int = 4
    cv_max: Decimal = Decimal("0.01")  # CV = sd / mean below 1 %
    rd_min_bids: int = 4
    rd_min: Decimal = Decimal("5")  # (p2 - p1) / sd(losing bids) at least 5
    kurtosis_min_bids: int = 5
    kurtosis_min: Decimal = Decimal("4")  # excess kurtosis (bias-corrected) at least 4
    skewness_min_bids: int = 4
    skewness_max: Decimal = Decimal("-1.8")  # skewness at most -1.8: the lowest bid far below the rest
    spacing_min_bids: int = 4  # a run of at least this many consecutive sorted prices
    spacing_cv_max: Decimal = Decimal("0.05")  # CV of the gaps in the run below 5 %


@dataclass(frozen=True)
class Finding:
    """One warning (预警) for the supervisors: which bids, why, and the evidence."""

    code: str
    kind: str
    lot: str
    bid_ids: tuple[int, ...]
    title: str
    explanation: str
    params: Mapping[str, str]
    evidence: Mapping[str, Any]


def screen_tender(bids: Sequence[BidFacts], params: ScreenParams = ScreenParams(),  # noqa: B008
                  exclude_sha256: frozenset[str] = frozenset(), *,
                  exclude_texts: Sequence[str] = ()) -> list[Finding]:
    """Run every screen on every lot of a tender and return the findings in a fixed order.

    ``exclude_sha256``: the hashes of the tender's own documents (the forms every bidder is given);
    identical copies of them are not evidence. ``exclude_texts``: the texts of those documents; their
    shingles are removed before texts are compared, so that filled-in copies of the same form are not
    reported as near-identical.
    """
    from supervision import price_screens, similarity

    by_lot: dict[str, list[BidFacts]] = {}
    for bid in bids:
        by_lot.setdefault(bid.lot, []).append(bid)
    template = similarity.template_shingles(exclude_texts, params) if exclude_texts else frozenset()
    findings: list[Finding] = []
    for lot in sorted(by_lot):
        lot_bids = sorted(by_lot[lot], key=lambda b: b.bid_id)
        findings += legal_findings(lot, lot_bids, params, exclude_sha256)
        findings += similarity.document_findings(lot, lot_bids, params, exclude_sha256, template)
        findings += price_screens.price_findings(lot, lot_bids, params)
    return sorted(findings, key=finding_order)


def finding_order(finding: Finding) -> tuple:
    """The sort key of findings: lot, then the screen's place in :data:`CODES`, then bids and evidence."""
    return (finding.lot, CODES.index(finding.code), finding.bid_ids, repr(sorted(finding.params.items())))


def bidders_text(bids: Iterable[BidFacts]) -> str:
    """The bidders' names as one string, ``"A, B and C"`` style without a language: ``"A; B; C"``."""
    return "; ".join(b.bidder for b in bids)


def bidders_evidence(bids: Iterable[BidFacts]) -> list[dict[str, Any]]:
    return [{"bid_id": b.bid_id, "bidder": b.bidder, "organisation_id": b.organisation_id} for b in bids]


def shared_values(bids: Sequence[BidFacts], values: Callable[[BidFacts], Iterable[str]]
                  ) -> list[tuple[str, list[BidFacts]]]:
    """The values shared by bids of at least two different organisations, each with those bids."""
    holders: dict[str, dict[int, BidFacts]] = {}
    for bid in bids:
        for value in set(values(bid)):
            holders.setdefault(value, {})[bid.bid_id] = bid
    shared = []
    for value in sorted(holders):
        group = sorted(holders[value].values(), key=lambda b: b.bid_id)
        if len({b.organisation_id for b in group}) >= 2:
            shared.append((value, group))
    return shared


def _address(value: str) -> str:
    text = value.strip()
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return text.lower()
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


def _clean(values: Iterable[str | None], normalise: Callable[[str], str], ignored: frozenset[str]) -> list[str]:
    ignored_norm = {normalise(v) for v in ignored}
    out = []
    for value in values:
        if value is None or not value.strip():
            continue
        norm = normalise(value)
        if norm not in ignored_norm:
            out.append(norm)
    return out


def _strip(value: str) -> str:
    return value.strip()


def _upper(value: str) -> str:
    return value.strip().upper()


def _lower(value: str) -> str:
    return value.strip().lower()


# code: (title, explanation, placeholder name, values of a bid)
_SHARED_SCREENS: tuple[tuple[str, str, str, str, Callable[[BidFacts, ScreenParams], list[str]]], ...] = (
    ("same_address", N_("Same upload address"),
     N_("The bids of %(bidders)s were uploaded from the same network address %(address)s."), "address",
     lambda b, p: _clean(b.upload_addresses, _address, p.ignored_addresses)),
    ("same_device", N_("Same upload device"),
     N_("The bids of %(bidders)s were uploaded from the same device %(device)s."), "device",
     lambda b, p: _clean(b.upload_devices, _strip, p.ignored_devices)),
    ("same_signer", N_("Same signing key"),
     N_("The sealed bids of %(bidders)s were signed with the same key %(key)s (the same CA lock or "
        "certificate)."), "key",
     lambda b, p: _clean((b.signer_key_id,), _lower, frozenset())),
    ("same_payer", N_("Bid bonds paid from the same account"),
     N_("The bid bonds or guarantee premiums of %(bidders)s were paid from the same account %(account)s."),
     "account",
     lambda b, p: _clean(b.guarantee_payers, lambda v: "".join(v.split()), frozenset())),
    ("same_manager", N_("Same project manager"),
     N_("The bids of %(bidders)s name the same project manager, registration certificate %(manager)s."),
     "manager",
     lambda b, p: _clean((b.project_manager,), _upper, frozenset())),
)


def legal_findings(lot: str, bids: Sequence[BidFacts], params: ScreenParams,
                   exclude_sha256: frozenset[str] = frozenset()) -> list[Finding]:
    """The shared-value screens (same address, device, key, payer, manager) and identical files."""
    findings = []
    for code, title, explanation, name, values in _SHARED_SCREENS:
        for value, group in shared_values(bids, lambda b, values=values: values(b, params)):
            findings.append(Finding(
                code=code, kind=LEGAL, lot=lot, bid_ids=tuple(b.bid_id for b in group), title=title,
                explanation=explanation, params={"bidders": bidders_text(group), name: value},
                evidence={name: value, "bids": bidders_evidence(group)}))
    findings += identical_document_findings(lot, bids, params, exclude_sha256)
    return findings


def identical_document_findings(lot: str, bids: Sequence[BidFacts], params: ScreenParams,
                                exclude_sha256: frozenset[str] = frozenset()) -> list[Finding]:
    """Files with the same SHA-256 in the bids of different organisations (文件异常一致, 条例 §40(4))."""
    excluded = {h.lower() for h in exclude_sha256}
    names: dict[tuple[str, int], list[str]] = {}

    def hashes(bid: BidFacts) -> list[str]:
        out = []
        for doc in bid.documents:
            digest = doc.sha256.strip().lower()
            if digest and digest not in excluded and doc.size >= params.identical_document_min_size:
                out.append(digest)
                names.setdefault((digest, bid.bid_id), []).append(doc.name)
        return out

    findings = []
    for digest, group in shared_values(bids, hashes):
        files = [{"bid_id": b.bid_id, "bidder": b.bidder, "names": sorted(names[(digest, b.bid_id)])}
                 for b in group]
        size = next(d.size for d in group[0].documents if d.sha256.strip().lower() == digest)
        findings.append(Finding(
            code="identical_document", kind=LEGAL, lot=lot, bid_ids=tuple(b.bid_id for b in group),
            title=N_("Identical files"),
            explanation=N_("The bids of %(bidders)s contain the same file (%(name)s, SHA-256 %(sha256)s); "
                           "it is not one of the tender's own documents."),
            params={"bidders": bidders_text(group), "name": files[0]["names"][0], "sha256": digest},
            evidence={"sha256": digest, "size": size, "files": files}))
    return findings


def generic_metadata(value: str, params: ScreenParams) -> bool:
    """Whether a metadata value is too common to tell computers apart (an authoring tool, "Administrator")."""
    norm = " ".join(value.split()).lower()
    return norm in GENERIC_METADATA or norm in {" ".join(v.split()).lower() for v in params.ignored_metadata_values}


def number(value: Decimal, places: int = 4) -> str:
    """A decimal as a plain string with at most ``places`` decimals (``"0.0123"``, ``"3.5"``)."""
    text = format(value.quantize(Decimal(1).scaleb(-places)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
