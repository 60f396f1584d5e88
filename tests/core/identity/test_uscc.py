"""Unified social credit codes: valid ones pass, each kind of mistake is named (position, character, fix)."""

from __future__ import annotations

import pytest
from flask_babel import force_locale

from core.errors import ValidationFailed
from core.identity import uscc
from core.identity.services import register_organisation, validate_uscc
from tests.core.identity.conftest import SYSTEM

VALID = "91350100M000100Y43"


@pytest.mark.parametrize("code", [
    VALID,
    "91110000600037341L",  # a well-known company's code
    "11370200004185203" + uscc.check_character("11370200004185203"),
    uscc.make("9137020016356268" + "1"),
])
def test_valid_codes_pass(code):
    assert uscc.problem(code) is None
    assert uscc.is_valid(code)


@pytest.mark.parametrize(("value", "code", "position", "words"), [
    ("", "empty", None, ["empty"]),
    ("91350100M000100Y4", "length", None, ["18 characters", "not 17"]),
    ("91350100M000100Y433", "length", None, ["18 characters", "not 19"]),
    ("91350100m000100Y43", "lowercase", 9, ["Character 9", "'m'", "upper-case"]),
    ("91350100I000100Y43", "charset", 9, ["Character 9", "'I'", "I, O, Z, S, V"]),
    ("91350100O000100Y43", "charset", 9, ["Character 9", "'O'"]),
    ("9135010Z0000100Y43", "charset", 8, ["Character 8", "'Z'"]),
    ("91350100M0S0100Y43", "charset", 11, ["Character 11", "'S'"]),
    ("91350100M000100V43", "charset", 16, ["Character 16", "'V'"]),
    ("91350100M000100Y4-", "charset", 18, ["Character 18", "'-'"]),
    ("91350100M000100Y44", "check_digit", 18, ["position 18", "is '4'", "should be '3'"]),
])
def test_each_problem_is_named(value, code, position, words):
    problem = uscc.problem(value)
    assert problem is not None
    assert (problem.code, problem.position) == (code, position)
    for word in words:
        assert word in str(problem.message)


def test_normalize_strips_spaces_and_hyphens_and_upper_cases():
    assert uscc.normalize(" 9135 0100-m000 100y43 ") == VALID


def test_messages_are_translatable_lazy_strings(app):
    problem = uscc.problem("123")
    with force_locale("en"):
        assert str(problem.message) == "The unified social credit code must have 18 characters, not 3."
    assert not isinstance(problem.message, str)  # rendered in the locale of whoever shows it


def test_service_error_names_the_problem(app):
    with pytest.raises(ValidationFailed) as err:
        validate_uscc("91350100M000100Y44")
    assert err.value.code == "invalid_uscc"
    assert "should be '3'" in err.value.to_dict()["message"]
    assert "should be '3'" in err.value.to_dict()["fields"]["uscc"][0]


def test_registration_normalises_the_code(app):
    org = register_organisation(SYSTEM, "91350100m000100y43", "Fuzhou Example Co.", "company")
    assert org.uscc == VALID
