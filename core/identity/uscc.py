"""Unified social credit code (统一社会信用代码, USCC), GB 32100-2015.

18 characters from ``0123456789ABCDEFGHJKLMNPQRTUWXY`` (no I, O, Z, S, V): position 1 the
registration authority, 2 the entity type, 3-8 the administrative region code, 9-17 the
organisation code, 18 the check character.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
VALUES = {c: i for i, c in enumerate(CHARSET)}
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


@dataclass(frozen=True)
class USCCProblem:
    """Why a string is not a valid USCC: a machine code, the position concerned and a translatable message.

    ``message`` is a lazy gettext string: it renders in the locale of the request that shows it (and in
    English outside a request).
    """

    code: str
    message: Any
    position: int | None = None


def check_character(first17: str) -> str:
    """Return the check character for the first 17 characters of a USCC."""
    total = sum(VALUES[c] * w for c, w in zip(first17, WEIGHTS, strict=True))
    return CHARSET[(31 - total % 31) % 31]


def problem(value: str) -> USCCProblem | None:
    """Return what is wrong with ``value`` as a USCC, or None when it is valid."""
    if not isinstance(value, str) or not value:
        return USCCProblem("empty", _l("The unified social credit code is empty."))
    if len(value) != 18:
        return USCCProblem("length", _l("The unified social credit code must have 18 characters, not %(count)s.",
                                        count=len(value)))
    for i, c in enumerate(value, start=1):
        if c.islower():
            return USCCProblem("lowercase", _l("Character %(position)s ('%(char)s') must be an upper-case letter.",
                                               position=i, char=c), i)
        if c not in VALUES:
            return USCCProblem(
                "charset",
                _l("Character %(position)s ('%(char)s') is not allowed; use digits and upper-case letters "
                   "except I, O, Z, S, V.", position=i, char=c),
                i,
            )
    expected = check_character(value[:17])
    if value[17] != expected:
        return USCCProblem("check_digit",
                           _l("The check character (position 18) is '%(char)s' but should be '%(expected)s'; "
                              "re-type the code from the business licence.", char=value[17], expected=expected),
                           18)
    return None


def is_valid(value: str) -> bool:
    return problem(value) is None


def normalize(value: str) -> str:
    """Strip spaces and hyphens and upper-case the code before validation."""
    return "".join(value.split()).replace("-", "").upper()


def make(first17: str) -> str:
    """Complete 17 characters into a valid USCC (for seeding and tests)."""
    return first17 + check_character(first17)
