"""Near-identical texts and shared authoring metadata (文件异常一致) between the bids of a lot.

Two legal screens (《招标投标法实施条例》§40(1) "prepared by the same unit or person" and §40(4)
"abnormally identical files"):

* ``similar_document``: the Jaccard similarity of the sets of character shingles (Broder 1997) of two
  texts. Texts are normalised (NFKC, lower case, no whitespace), cut into overlapping ``shingle_size``
  character strings, each hashed with CRC-32; one hash in ``shingle_sample`` is kept (those divisible by
  it: the same shingle is kept or dropped in every text, so the kept sets estimate the Jaccard similarity
  of the full sets). Shingles of the tender's own documents are removed first. Linear in the text
  length: a 100 KB text takes about 25 ms; no pairwise string diff.
* ``same_metadata``: the same non-generic author (or last editor, company), the same creation time with
  the same authoring tool, or the same ZIP comment in the files of different bidders.
"""

from __future__ import annotations

import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from core.i18n import N_
from supervision.screens import (
    LEGAL,
    BidFacts,
    DocumentFact,
    Finding,
    ScreenParams,
    bidders_evidence,
    bidders_text,
    generic_metadata,
    number,
    shared_values,
)

# metadata keys whose value names a person or organisation: equal values in two bids are evidence
PERSON_KEYS = ("author", "last_modified_by", "company")
# full-width ASCII forms (，；：０-９ Ａ-Ｚ) and the ideographic space, as NFKC maps them
_FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def normalise(text: str) -> str:
    """NFKC, lower case, all whitespace removed: layout and full-width forms do not hide a copy."""
    text = text.translate(_FULL_WIDTH)  # the common case, cheaper than a full NFKC pass
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return "".join(text.lower().split())


def shingles(text: str, size: int = 5, sample: int = 1) -> frozenset[int]:
    """The CRC-32 hashes of the ``size``-character shingles of a normalised text, keeping one in ``sample``."""
    data = text.encode("utf-32-le")  # 4 bytes a character: a shingle is a fixed-width slice
    width, step = 4 * size, 4
    crc = zlib.crc32
    hashes = map(crc, (data[i:i + width] for i in range(0, len(data) - width + step, step)))
    if sample <= 1:
        return frozenset(hashes)
    return frozenset({h for h in hashes if not h % sample})


def jaccard(a: frozenset[int], b: frozenset[int]) -> Decimal:
    """``|a ∩ b| / |a ∪ b|`` as a decimal (0 for two empty sets)."""
    if not a and not b:
        return Decimal(0)
    common = len(a & b)
    return Decimal(common) / Decimal(len(a) + len(b) - common)


def template_shingles(texts: Iterable[str], params: ScreenParams) -> frozenset[int]:
    """The shingles of the tender's own documents, removed from the bidders' texts before comparing."""
    out: set[int] = set()
    for text in texts:
        out |= shingles(normalise(text), params.shingle_size, params.shingle_sample)
    return frozenset(out)


def document_findings(lot: str, bids: Sequence[BidFacts], params: ScreenParams,
                      exclude_sha256: frozenset[str] = frozenset(),
                      template: frozenset[int] = frozenset()) -> list[Finding]:
    """``similar_document`` and ``same_metadata`` findings of one lot's bids."""
    return (similar_document_findings(lot, bids, params, exclude_sha256, template)
            + same_metadata_findings(lot, bids, params, exclude_sha256))


def similar_document_findings(lot: str, bids: Sequence[BidFacts], params: ScreenParams,
                              exclude_sha256: frozenset[str] = frozenset(),
                              template: frozenset[int] = frozenset()) -> list[Finding]:
    """One finding per pair of bids (of different organisations) with a pair of near-identical texts."""
    excluded = {h.lower() for h in exclude_sha256}
    # (bid, document, shingle set), the texts long enough to compare
    texts: list[tuple[BidFacts, DocumentFact, frozenset[int]]] = []
    for bid in bids:
        for doc in bid.documents:
            if (doc.text is None or len(doc.text) < params.similarity_min_chars
                    or doc.sha256.strip().lower() in excluded):
                continue
            text = normalise(doc.text)
            if len(text) < params.similarity_min_chars:
                continue
            kept = shingles(text, params.shingle_size, params.shingle_sample) - template
            if kept:
                texts.append((bid, doc, kept))
    # sort by set size: J(a, b) <= |a| / |b| for |a| <= |b|, so a scan stops once sizes drift apart
    texts.sort(key=lambda item: len(item[2]))
    minimum = params.similarity_min
    pairs: dict[tuple[int, int], list[tuple[Decimal, DocumentFact, DocumentFact]]] = {}
    by_id = {bid.bid_id: bid for bid in bids}
    for i, (bid_a, doc_a, set_a) in enumerate(texts):
        for bid_b, doc_b, set_b in texts[i + 1:]:
            if Decimal(len(set_a)) < minimum * len(set_b):
                break
            if bid_a.organisation_id == bid_b.organisation_id or doc_a.sha256.lower() == doc_b.sha256.lower():
                continue  # the same bidder, or identical files (reported as identical_document)
            value = jaccard(set_a, set_b)
            if value >= minimum:
                first, second = (bid_a, bid_b) if bid_a.bid_id < bid_b.bid_id else (bid_b, bid_a)
                docs = (doc_a, doc_b) if first is bid_a else (doc_b, doc_a)
                pairs.setdefault((first.bid_id, second.bid_id), []).append((value, *docs))
    findings = []
    for (id_a, id_b), matches in sorted(pairs.items()):
        group = [by_id[id_a], by_id[id_b]]
        matches.sort(key=lambda m: (-m[0], m[1].name, m[2].name))
        best, doc_a, doc_b = matches[0]
        findings.append(Finding(
            code="similar_document", kind=LEGAL, lot=lot, bid_ids=(id_a, id_b),
            title=N_("Near-identical texts"),
            explanation=N_("The bids of %(bidders)s contain near-identical texts: %(name_a)s and %(name_b)s "
                           "share %(similarity)s of their text (Jaccard similarity of 5-character pieces)."),
            params={"bidders": bidders_text(group), "name_a": doc_a.name, "name_b": doc_b.name,
                    "similarity": number(best, 3)},
            evidence={"bids": bidders_evidence(group), "threshold": number(minimum, 3),
                      "documents": [{"similarity": number(v, 3), "bid_a": {"name": a.name, "sha256": a.sha256},
                                     "bid_b": {"name": b.name, "sha256": b.sha256}} for v, a, b in matches]}))
    return findings


def metadata_fingerprints(doc: DocumentFact, params: ScreenParams) -> list[tuple[str, str]]:
    """The (field, value) pairs of a file's metadata that tell one computer or person from another."""
    meta = {str(k).lower(): " ".join(str(v).split()) for k, v in doc.metadata.items() if v is not None}
    out = []
    for key in PERSON_KEYS:
        value = meta.get(key, "")
        if value and not generic_metadata(value, params):
            out.append((key, value))
    created, creator = meta.get("creation_date", ""), meta.get("creator", "")
    if created and creator and not generic_metadata(created, params):
        out.append(("creation_date+creator", f"{created} | {creator}"))
    comment = meta.get("zip_comment", "")
    if comment and not generic_metadata(comment, params):
        out.append(("zip_comment", comment))
    return out


_METADATA_FIELDS = {
    "author": N_("author"),
    "last_modified_by": N_("last editor"),
    "company": N_("company"),
    "creation_date+creator": N_("creation time and authoring program"),
    "zip_comment": N_("ZIP comment"),
}


def same_metadata_findings(lot: str, bids: Sequence[BidFacts], params: ScreenParams,
                           exclude_sha256: frozenset[str] = frozenset()) -> list[Finding]:
    """One finding per metadata value shared by the files of different organisations' bids."""
    excluded = {h.lower() for h in exclude_sha256}
    files: dict[tuple[str, int], list[str]] = {}
    digests: dict[str, set[str]] = {}

    def values(bid: BidFacts) -> list[str]:
        out = []
        for doc in bid.documents:
            digest = doc.sha256.strip().lower()
            if digest in excluded:
                continue
            for key, value in metadata_fingerprints(doc, params):
                token = f"{key}\x00{value}"
                out.append(token)
                files.setdefault((token, bid.bid_id), []).append(doc.name)
                digests.setdefault(token, set()).add(digest)
        return out

    findings = []
    for token, group in shared_values(bids, values):
        if len(digests[token]) == 1:
            continue  # only copies of one identical file share it: reported as identical_document
        key, value = token.split("\x00", 1)
        evidence: dict[str, Any] = {
            "field": key, "value": value, "bids": bidders_evidence(group),
            "files": [{"bid_id": b.bid_id, "names": sorted(set(files[(token, b.bid_id)]))} for b in group]}
        findings.append(Finding(
            code="same_metadata", kind=LEGAL, lot=lot, bid_ids=tuple(b.bid_id for b in group),
            title=N_("Same file metadata"),
            explanation=N_("Files in the bids of %(bidders)s carry the same %(field)s: %(value)s."),
            params={"bidders": bidders_text(group), "field": _METADATA_FIELDS[key], "value": value},
            evidence=evidence))
    return findings
