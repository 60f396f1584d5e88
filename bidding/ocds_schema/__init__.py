"""Vendored OCDS 1.1 schema files and codelists (data; see README.md for source and licence).

Loaders read them from this package, never from the network.
"""

from __future__ import annotations

import csv
import io
import json
from functools import cache
from importlib.resources import files
from typing import Any

RELEASE_SCHEMA_URL = "https://standard.open-contracting.org/schema/1__1__5/release-schema.json"
"""The URL the package schema ``$ref``s for each release; resolved to ``release-schema.json`` here."""


def load_schema(filename: str) -> dict[str, Any]:
    """Return a fresh copy of the vendored JSON schema ``filename`` (e.g. ``release-schema.json``)."""
    return json.loads(files(__package__).joinpath(filename).read_text(encoding="utf-8"))


@cache
def codelist(name: str) -> frozenset[str]:
    """Return the codes of the OCDS codelist ``name`` (e.g. ``"tenderStatus"``)."""
    text = files(__package__).joinpath(f"{name}.csv").read_text(encoding="utf-8")
    return frozenset(row["Code"] for row in csv.DictReader(io.StringIO(text)) if row.get("Code"))
