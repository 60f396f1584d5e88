"""Validate OCDS 1.1 release packages offline: JSON Schema (draft 4), codelists and cross-references.

The package schema ``$ref``s the release schema by its URL; a ``referencing`` registry maps that URL to
the vendored copy in ``bidding/ocds_schema``, so nothing is ever fetched. Formats (``date-time``,
``uri``) are checked too, with small checkers of our own so that no optional dependency decides
silently whether they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from bidding.ocds_schema import RELEASE_SCHEMA_URL, codelist, load_schema

CODELIST_FIELDS: tuple[tuple[str, str], ...] = (
    ("tag[]", "releaseTag"),
    ("initiationType", "initiationType"),
    ("tender.status", "tenderStatus"),
    ("tender.procurementMethod", "method"),
    ("tender.mainProcurementCategory", "procurementCategory"),
    ("parties[].roles[]", "partyRole"),
    ("tender.documents[].documentType", "documentType"),
    ("tender.lots[].status", "tenderStatus"),
)
"""Release fields whose codes must come from the named codelist. ``partyRole`` and ``documentType`` are
open codelists in OCDS 1.1; ebid holds itself to their standard codes so that every consumer knows them.
Currencies are checked wherever a ``currency`` key appears."""

OCID_PATTERN = re.compile(r"^ocds-[a-z0-9]{6}-\S+$")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_MAX_ENUM_SHOWN = 10

_formats = FormatChecker(formats=())


@_formats.checks("date-time")
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATE_TIME.match(value):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


@_formats.checks("uri")
def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not value.isascii() or any(c.isspace() for c in value):
        return False
    parts = urlsplit(value)
    return bool(parts.scheme) and bool(parts.netloc or parts.path)


@cache
def _validator() -> Draft4Validator:
    release = Resource.from_contents(load_schema("release-schema.json"))
    registry = Registry().with_resource(RELEASE_SCHEMA_URL, release)
    return Draft4Validator(load_schema("release-package-schema.json"), registry=registry,
                           format_checker=_formats)


def _message(error: ValidationError) -> str:
    location = error.json_path
    if error.validator == "enum":
        allowed = [c for c in error.validator_value if c is not None]
        shown = f": {', '.join(allowed)}" if len(allowed) <= _MAX_ENUM_SHOWN else ""
        return f"{location}: {error.instance!r} is not a code of its closed codelist{shown}"
    return f"{location}: {error.message}"


def _walk(node: Any, path: list[str], where: str) -> Iterator[tuple[str, Any]]:
    """Yield ``(location, value)`` for ``path`` (``["parties[]", "roles[]"]``) below ``node``."""
    if not path:
        yield where, node
        return
    head, rest = path[0], path[1:]
    key = head.removesuffix("[]")
    if not isinstance(node, dict) or key not in node:
        return
    child = node[key]
    if head.endswith("[]"):
        if isinstance(child, list):
            for index, item in enumerate(child):
                yield from _walk(item, rest, f"{where}.{key}[{index}]")
    else:
        yield from _walk(child, rest, f"{where}.{key}")


def _currencies(node: Any, where: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "currency":
                yield f"{where}.currency", value
            else:
                yield from _currencies(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _currencies(item, f"{where}[{index}]")


def _codelist_errors(release: dict[str, Any], where: str) -> Iterator[str]:
    for field, name in CODELIST_FIELDS:
        for location, code in _walk(release, field.split("."), where):
            if isinstance(code, str) and code not in codelist(name):
                yield f"{location}: {code!r} is not in the {name} codelist"
    for location, code in _currencies(release, where):
        if isinstance(code, str) and code not in codelist("currency"):
            yield f"{location}: {code!r} is not in the currency codelist"


def _ids(entries: Any) -> list[str]:
    """Return the ids of a list of objects as strings (broken data must not break the checks)."""
    return [str(e.get("id")) for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def _reference_errors(release: dict[str, Any], where: str) -> Iterator[str]:
    """Check what JSON Schema cannot: unique ids, and that references point at something real."""
    ocid = release.get("ocid")
    if isinstance(ocid, str) and not OCID_PATTERN.match(ocid):
        yield f"{where}.ocid: {ocid!r} does not start with an OCDS prefix (ocds-xxxxxx-)"
    parties = release.get("parties") if isinstance(release.get("parties"), list) else []
    party_ids = _ids(parties)
    if len(set(party_ids)) != len(party_ids):
        yield f"{where}.parties: party ids are not unique"
    roles = {str(p.get("id")): p.get("roles") or [] for p in parties if isinstance(p, dict)}
    tender = release.get("tender") if isinstance(release.get("tender"), dict) else {}
    for location, reference, role in ((f"{where}.buyer", release.get("buyer"), "buyer"),
                                      (f"{where}.tender.procuringEntity", tender.get("procuringEntity"),
                                       "procuringEntity")):
        if isinstance(reference, dict) and role not in roles.get(str(reference.get("id")), []):
            yield f"{location}: no party with id {reference.get('id')!r} has the role {role!r}"
    lot_ids = _ids(tender.get("lots"))
    if len(set(lot_ids)) != len(lot_ids):
        yield f"{where}.tender.lots: lot ids are not unique"
    for index, item in enumerate(tender.get("items") or []):
        related = item.get("relatedLot") if isinstance(item, dict) else None
        if lot_ids and str(related) not in lot_ids:
            yield f"{where}.tender.items[{index}].relatedLot: {related!r} is not the id of a lot"
    for index, doc in enumerate(tender.get("documents") or []):
        for related in (doc.get("relatedLots") or []) if isinstance(doc, dict) else []:
            if str(related) not in lot_ids:
                yield f"{where}.tender.documents[{index}].relatedLots: {related!r} is not the id of a lot"


def validate_package(package: Any) -> list[str]:
    """Return the problems of an OCDS 1.1 release package, one message each; empty when it is valid."""
    errors = [_message(e) for e in sorted(_validator().iter_errors(package), key=lambda e: e.json_path)]
    if not isinstance(package, dict) or not isinstance(package.get("releases"), list):
        return errors
    seen: set[tuple[str, str]] = set()
    for index, release in enumerate(package["releases"]):
        where = f"$.releases[{index}]"
        if not isinstance(release, dict):
            continue
        key = (str(release.get("ocid")), str(release.get("id")))
        if key in seen:
            errors.append(f"{where}.id: release id {key[1]!r} appears twice for ocid {key[0]!r}")
        seen.add(key)
        errors.extend(_codelist_errors(release, where))
        errors.extend(_reference_errors(release, where))
    return errors
