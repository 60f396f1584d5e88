"""Canonical JSON: the one byte encoding of receipts, tree heads, log entries and bid contexts.

The encoding is RFC 8785 (JCS) restricted to a value domain where JCS and this simple rule agree:
objects with ASCII string keys, sorted by key; strings (UTF-8, unescaped except ``"``, ``\\`` and
control characters, which use the short escapes ``\\b \\f \\n \\r \\t`` or ``\\u00xx``); integers in
[-(2^53 - 1), 2^53 - 1]; ``true``, ``false``, ``null``; arrays. No floats, no whitespace.

Decoding is strict: the bytes must be exactly the canonical encoding of what they decode to, so one
document has one byte string and one hash.
"""

from __future__ import annotations

import json
from typing import Any

from crypto.errors import DocumentFormatError

MAX_SAFE_INTEGER = (1 << 53) - 1


def _check(value: Any, path: str) -> None:
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise DocumentFormatError(f"{path}: integer {value} is outside the JSON-safe range")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise DocumentFormatError(f"{path}: object keys must be ASCII strings, not {key!r}")
            _check(item, f"{path}.{key}")
        return
    raise DocumentFormatError(f"{path}: {type(value).__name__} values cannot be encoded (no floats, no bytes)")


def encode(value: Any) -> bytes:
    """The canonical bytes of ``value``."""
    _check(value, "$")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _no_float(text: str) -> Any:
    raise DocumentFormatError(f"Floating-point numbers are not allowed ({text})")


def _no_constant(text: str) -> Any:
    raise DocumentFormatError(f"{text} is not allowed")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DocumentFormatError(f"Duplicate key {key!r}")
        result[key] = value
    return result


def decode(data: bytes) -> Any:
    """Decode canonical JSON; non-canonical input (spacing, key order, escapes) is refused."""
    try:
        text = bytes(data).decode("utf-8")
        value = json.loads(text, parse_float=_no_float, parse_constant=_no_constant,
                           object_pairs_hook=_unique_keys)
    except UnicodeDecodeError as exc:
        raise DocumentFormatError("The document is not UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise DocumentFormatError(f"The document is not JSON: {exc.msg} at offset {exc.pos}") from exc
    if encode(value) != bytes(data):
        raise DocumentFormatError("The document is not in canonical form (sorted keys, no whitespace, "
                                  "minimal escapes)")
    return value
