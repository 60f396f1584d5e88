"""E-guarantee letters (电子保函): the PDF an issuer sends, and the issuer's PAdES seal on it.

Pure: data and keys in, bytes out (no Flask, no database). :func:`build_letter_pdf` sets the letter
with reportlab in the shipped CJK font (embedded as a subset, so any viewer shows the same text);
:func:`sign_letter` adds the issuer's visible electronic seal as a PAdES signature
(``ETSI.CAdES.detached``) that pyHanko and poppler's ``pdfsig`` both verify.

A letter is a legal document, so its wording is fixed and bilingual (Chinese first, English beside):
the text a signature covers must not change with the reader's language.

Sealed letters (密文保函) hide who bids for what until the opening: the tenderer, the bidder, the tender
and the lot are replaced by "sealed until the opening" and by a SHA-256 digest of those details with a
random salt. After the opening the issuer publishes a second signed revision (:func:`reveal`) that
prints the details and the salt, so anyone can recompute the digest printed on the sealed letter.
"""

from __future__ import annotations

import hashlib
import io
import json
import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError

from core.clock import beijing, now
from core.pdf import cjk_stamp_style, register_cjk_font, simple_signer
from guarantees.letter_layout import render_letter
from guarantees.protocol import (
    VERIFICATION_ALPHABET,
    VERIFICATION_CODE_LENGTH,
    generate_verification_code,
    is_verification_code,
)

ISSUER_KINDS = ("bank", "guarantee_company", "insurer")
SEAL_FIELD = "IssuerSeal"
SEAL_BOX = (345, 44, 545, 124)  # x1, y1, x2, y2 in points on the last page, kept free by the layout
MAX_AMOUNT = Decimal("999999999999.99")

_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_UNITS = ("", "拾", "佰", "仟")
_SECTIONS = ("", "万", "亿")
_CENT = Decimal("0.01")


# --------------------------------------------------------------------------- small pure helpers


def new_verification_code() -> str:
    """A random 10-character verification code (验证码) from the protocol's unambiguous alphabet."""
    return generate_verification_code()


def new_details_salt() -> str:
    """A random salt for the sealed-details digest of a 密文保函."""
    return secrets.token_hex(16)


def letter_sha256(pdf: bytes) -> str:
    """SHA-256 of the letter file as lowercase hex (what the issuer's registry publishes)."""
    return hashlib.sha256(pdf).hexdigest()


def _section_words(n: int) -> str:
    """1..9999 in financial numerals; inner zeros collapse to one 零, trailing zeros vanish."""
    words: list[str] = []
    zero = False
    for power in (3, 2, 1, 0):
        digit = n // 10**power % 10
        if digit == 0:
            zero = bool(words)
            continue
        if zero:
            words.append("零")
            zero = False
        words.append(_DIGITS[digit] + _UNITS[power])
    return "".join(words)


def _integer_words(n: int) -> str:
    if n == 0:
        return "零"
    sections = []
    while n:
        sections.append(n % 10000)
        n //= 10000
    out, pending_zero = "", False
    for index in range(len(sections) - 1, -1, -1):
        section = sections[index]
        if section == 0:
            pending_zero = bool(out)
            continue
        if out and (pending_zero or section < 1000):
            out += "零"
        out += _section_words(section) + _SECTIONS[index]
        pending_zero = False
    return out


def amount_in_words(amount: Decimal | int | str) -> str:
    """The amount in Chinese upper-case financial numerals (大写金额), e.g. 125000 -> 壹拾贰万伍仟元整.

    Follows 《支付结算办法》: 壹拾 (never a bare 拾), one 零 for a run of zeros, 零 after 元 when only
    分 follows, 整 after 元 or 角 and never after 分. Rounded half up to the fen; floats are refused.
    """
    if isinstance(amount, float | bool):
        raise TypeError("amount must be a Decimal, an int or a decimal string, not a float")
    value = Decimal(amount).quantize(_CENT, rounding=ROUND_HALF_UP)
    if value < 0:
        raise ValueError("amount must not be negative")
    if value > MAX_AMOUNT:
        raise ValueError(f"amount must be at most {MAX_AMOUNT}")
    yuan, cents = divmod(int(value * 100), 100)
    jiao, fen = divmod(cents, 10)
    if yuan == 0 and cents == 0:
        return "零元整"
    out = _integer_words(yuan) + "元" if yuan else ""
    if cents == 0:
        return out + "整"
    if jiao:
        out += _DIGITS[jiao] + "角"
    elif yuan:
        out += "零"
    return out + (_DIGITS[fen] + "分" if fen else "整")


def format_amount(amount: Decimal) -> str:
    """¥1,234,567.80"""
    return f"¥{Decimal(amount).quantize(_CENT, rounding=ROUND_HALF_UP):,.2f}"


def format_beijing(value: datetime) -> str:
    """A moment in Beijing time (北京时间) as printed on letters."""
    return beijing(value).strftime("%Y-%m-%d %H:%M")


# --------------------------------------------------------------------------- the letter's data


@dataclass(frozen=True)
class Party:
    """A named organisation with its unified social credit code (统一社会信用代码)."""

    name: str
    uscc: str


@dataclass(frozen=True)
class LetterData:
    """Everything printed on a letter. Sealed letters print the details only once ``revealed_at`` is set."""

    guarantee_no: str
    issuer_name: str
    issuer_kind: str                # bank | guarantee_company | insurer
    beneficiary: Party              # 受益人: the tenderer (招标人)
    principal: Party                # 被保证人: the bidder (投标人)
    tender_code: str
    tender_title: str
    lot_code: str
    lot_title: str
    amount: Decimal
    valid_from: datetime
    valid_until: datetime
    issued_at: datetime
    verification_code: str
    verify_url: str
    sealed: bool = False            # 密文保函
    details_salt: str = ""          # sealed letters: the salt of the details digest
    revealed_at: datetime | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.issuer_kind not in ISSUER_KINDS:
            problems.append(f"issuer_kind must be one of {', '.join(ISSUER_KINDS)}")
        for name in ("guarantee_no", "issuer_name", "tender_code", "lot_code", "verify_url"):
            if not str(getattr(self, name) or "").strip():
                problems.append(f"{name} is empty")
        for name in ("beneficiary", "principal"):
            party = getattr(self, name)
            if not (party.name.strip() and party.uscc.strip()):
                problems.append(f"{name} needs a name and a USCC")
        if not isinstance(self.amount, Decimal) or self.amount <= 0:
            problems.append("amount must be a positive Decimal")
        times = [self.valid_from, self.valid_until, self.issued_at]
        if self.revealed_at is not None:
            times.append(self.revealed_at)
        if any(t.tzinfo is None for t in times):
            problems.append("dates must be aware datetimes")
        elif self.valid_until <= self.valid_from:
            problems.append("valid_until must be after valid_from")
        if not is_verification_code(self.verification_code):
            problems.append(f"verification_code must be {VERIFICATION_CODE_LENGTH} characters of "
                            f"{VERIFICATION_ALPHABET}")
        if self.sealed and len(self.details_salt) < 16:
            problems.append("a sealed letter needs a details_salt of at least 16 characters")
        if self.revealed_at is not None and not self.sealed:
            problems.append("only a sealed letter can be revealed")
        if problems:
            raise ValueError("letter data: " + "; ".join(problems))

    @property
    def shows_details(self) -> bool:
        return not self.sealed or self.revealed_at is not None

    @property
    def revision(self) -> int:
        return 2 if self.revealed_at is not None else 1


def sealed_details(data: LetterData) -> dict:
    """The fields a sealed letter hides, as the dict its digest is taken over."""
    return {"beneficiary": {"name": data.beneficiary.name, "uscc": data.beneficiary.uscc},
            "principal": {"name": data.principal.name, "uscc": data.principal.uscc},
            "tender_code": data.tender_code, "tender_title": data.tender_title,
            "lot_code": data.lot_code, "lot_title": data.lot_title, "salt": data.details_salt}


def sealed_details_digest(data: LetterData) -> str:
    """SHA-256 over the canonical JSON of :func:`sealed_details` (printed on both revisions)."""
    text = json.dumps(sealed_details(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def reveal(data: LetterData, *, revealed_at: datetime) -> LetterData:
    """The second revision of a sealed letter, printing the hidden details (after the opening)."""
    if not data.sealed:
        raise ValueError("only a sealed letter (密文保函) can be revealed")
    return replace(data, revealed_at=revealed_at)


# --------------------------------------------------------------------------- PDF and seal


def build_letter_pdf(data: LetterData) -> bytes:
    """Set the letter on one A4 page (A4, embedded CJK font subset); the seal box stays free."""
    font_name = register_cjk_font()
    return render_letter(data, font_name=font_name, seal_box=SEAL_BOX, digest=(
        sealed_details_digest(data) if data.sealed else None), amount_words=amount_in_words(data.amount),
        amount_figures=format_amount(data.amount), when=format_beijing)


def _subject_name(cert: x509.Certificate) -> str:
    for oid in (NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME):
        values = cert.subject.get_attributes_for_oid(oid)
        if values:
            return str(values[0].value)
    return cert.subject.rfc4514_string()


def sign_letter(pdf: bytes, signer_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
                signer_cert: x509.Certificate, ca_chain: list[x509.Certificate] | tuple = (), *,
                signed_at: datetime | None = None, reason: str = "电子保函签章 / e-guarantee seal") -> bytes:
    """Add the issuer's visible seal as a PAdES signature (field ``IssuerSeal``) and return the new PDF.

    ``ca_chain`` is embedded so a verifier needs only the issuer's root. The stamp shows the
    certificate's organisation name and ``signed_at`` (default: now) in Beijing time, in the shipped font
    (a single-font .ttf, as pyHanko needs).
    """
    signer = simple_signer(signer_key, signer_cert, ca_chain)
    name = _subject_name(signer_cert)
    text = f"{name}\n电子签章 Electronic seal\n{format_beijing(signed_at or now())} 北京时间"
    style = cjk_stamp_style(text)
    meta = signers.PdfSignatureMetadata(field_name=SEAL_FIELD, subfilter=fields.SigSeedSubFilter.PADES,
                                        md_algorithm="sha256", reason=reason, name=name)
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    spec = fields.SigFieldSpec(SEAL_FIELD, on_page=-1, box=SEAL_BOX)
    try:
        out = signers.PdfSigner(meta, signer, stamp_style=style, new_field_spec=spec).sign_pdf(writer)
    except SigningError as exc:
        if "filled already" in str(exc):
            raise ValueError("this letter already carries the issuer's seal") from exc
        raise
    return out.getvalue()
