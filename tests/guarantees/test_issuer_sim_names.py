"""The reference issuer's certificate names: X.520 bounds CN and O at 64; long Chinese names must fit."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

import pytest
from cryptography.x509.oid import NameOID

from guarantees import protocol
from guarantees.issuer_sim import SimConfig, create_app
from guarantees.issuer_sim.keys import bounded, create_keys
from tests.guarantees.sim_support import PLATFORM_ID, FakePlatform, Sim, issued, serve, stop, validate

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
LONG = "中国工商银行股份有限公司青岛市分行营业部暨山东省青岛市市南区香港中路支行电子保函业务中心"  # 45 characters
VERY_LONG = LONG * 2  # 90 characters


def utf8(text: str) -> int:
    return len(text.encode("utf-8"))


@pytest.mark.parametrize(("text", "suffix", "size", "expected"), [
    ("Bank One", "", utf8, "Bank One"),
    ("Bank One", " Guarantee CA (B1)", utf8, "Bank One Guarantee CA (B1)"),
    ("A" * 64, "", utf8, "A" * 64),                                  # exactly fits
    ("A" * 65, "", utf8, "A" * 61 + "…"),                            # 61 + 3 bytes of the ellipsis
    ("中" * 21, "", utf8, "中" * 21),                                 # 63 bytes fit
    ("中" * 22, "", utf8, "中" * 20 + "…"),                           # 66 bytes: 20 characters + "…" = 63
    ("中" * 30, " CA", utf8, "中" * 19 + "…" + " CA"),               # 57 + 3 + 3 = 63
    ("中" * 30, "", len, "中" * 30),                                  # O counts characters
    ("中" * 70, "", len, "中" * 63 + "…"),
    ("  padded  ", "", utf8, "padded"),
    ("A" * 60 + "e\u0301\u0301" + "B" * 5, "", utf8, "A" * 60 + "…"),  # never parts e from its accents
])
def test_bounded(text, suffix, size, expected):
    result = bounded(text, suffix=suffix, size=size)
    assert result == expected
    assert size(result) <= 64
    assert result.encode("utf-8").decode("utf-8") == result
    assert not unicodedata.combining(result.rstrip("…" + suffix)[-1])


def test_suffix_too_long_is_refused():
    with pytest.raises(ValueError):
        bounded("x" * 80, suffix="y" * 62)


def _attribute(cert, oid) -> str:
    return cert.subject.get_attributes_for_oid(oid)[0].value


@pytest.mark.parametrize("name", [LONG, VERY_LONG])
def test_keys_for_a_long_chinese_name(tmp_path, name):
    keys = create_keys(tmp_path, code="ICBCQD", name=name, now=NOW, uscc="91370200MA3QB8K25X")
    for cert in (keys.ca_cert, keys.message_cert, keys.letter_cert):
        common_name = _attribute(cert, NameOID.COMMON_NAME)
        organisation = _attribute(cert, NameOID.ORGANIZATION_NAME)
        assert utf8(common_name) <= 64 and len(organisation) <= 64
        assert organisation == (name if len(name) <= 64 else name[:63] + "…")
    ca_cn = _attribute(keys.ca_cert, NameOID.COMMON_NAME)
    assert ca_cn.endswith(" Guarantee CA (ICBCQD)") and ca_cn.startswith(name[:10])
    assert _attribute(keys.message_cert, NameOID.COMMON_NAME) == "ICBCQD message signing"


def test_a_long_named_issuer_issues_a_valid_letter(tmp_path):
    platform_key = protocol.generate_private_key()
    platform = FakePlatform()
    platform.url, server, thread = serve(platform)
    sim = Sim(create_app(SimConfig(code="BANK1", name=VERY_LONG, data_dir=tmp_path / "bank1",
                                   platform_url=platform.url, platform_id=PLATFORM_ID,
                                   platform_public_key=platform_key.public_key(), locale="en", retry_base=0.1,
                                   retry_max=0.4, poll_interval=0.05)), platform_key)
    platform.issuer_key = sim.parts.keys.message_cert.public_key()
    try:
        _, pdf = issued(sim, platform, "ORD-LONG-1")
        status = validate(pdf, sim.parts.keys.ca_cert)
        assert status.intact and status.valid and status.trusted
    finally:
        sim.stop()
        stop(server, thread)
