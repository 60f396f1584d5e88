"""PDF building blocks shared by every signed document (letters, opening records, reports).

The shipped CJK font (``core/fonts``, licence in its README) is registered with reportlab once per
process and embedded as a subset in each PDF that uses it, so any viewer shows the same text; the same
single-font .ttf sets the Chinese text of pyHanko signature stamps.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Mapping
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.sign import fields, signers
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator.registry import SimpleCertificateStore
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

CJK_FONT_PATH = Path(__file__).with_name("fonts") / "wqy-zenhei-gb2312.ttf"
CJK_FONT_NAME = "WQYZenHeiGB2312"  # the name reportlab registers it under

_font_lock = threading.Lock()
_font_registered = False


def register_cjk_font() -> str:
    """Register the shipped CJK font with reportlab (once per process); return its reportlab name."""
    global _font_registered
    with _font_lock:
        if not _font_registered:
            pdfmetrics.registerFont(TTFont(CJK_FONT_NAME, str(CJK_FONT_PATH)))
            _font_registered = True
    return CJK_FONT_NAME


def to_asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    """The certificate as the asn1crypto object pyHanko works with."""
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def simple_signer(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, cert: x509.Certificate,
                  chain: list[x509.Certificate] | tuple = ()) -> signers.SimpleSigner:
    """A pyHanko signer for an in-memory key; ``chain`` is embedded so a verifier needs only the root."""
    key_der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return signers.SimpleSigner(signing_cert=to_asn1(cert), signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
                                cert_registry=SimpleCertificateStore.from_certs([to_asn1(c) for c in chain]))


def cjk_stamp_style(text: str, *, color: tuple[float, float, float] = (0.75, 0.05, 0.05),
                    font_size: int = 9) -> TextStampStyle:
    """A bordered signature stamp whose text (Chinese allowed) is set in the shipped font."""
    return TextStampStyle(stamp_text=text.replace("%", "%%"), border_width=2, border_color=color,
                          text_box_style=TextBoxStyle(font=GlyphAccumulatorFactory(str(CJK_FONT_PATH)),
                                                      font_size=font_size))


def sign_field(pdf: bytes, field_name: str, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
               cert: x509.Certificate, chain: list[x509.Certificate] | tuple = (), *, stamp_text: str,
               reason: str, signer_name: str) -> bytes:
    """Fill the empty signature field ``field_name`` with a PAdES signature, as an incremental update.

    Earlier revisions stay byte for byte as they were (the new revision is appended), so whoever holds
    the earlier file can check that only this signature was added. Runs on the signer's machine.
    """
    meta = signers.PdfSignatureMetadata(field_name=field_name, subfilter=fields.SigSeedSubFilter.PADES,
                                        md_algorithm="sha256", reason=reason, name=signer_name)
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    signer = signers.PdfSigner(meta, simple_signer(key, cert, chain), stamp_style=cjk_stamp_style(stamp_text))
    return signer.sign_pdf(writer, existing_fields_only=True).getvalue()


def add_signature_fields(pdf: bytes, placements: Mapping[str, tuple[int, tuple[int, int, int, int]]], *,
                         writer_class: type[IncrementalPdfFileWriter] = IncrementalPdfFileWriter) -> bytes:
    """Add empty signature fields (name -> (page index, box in points)) as one incremental update, in order."""
    writer = writer_class(io.BytesIO(pdf))
    for name, (page, box) in placements.items():
        fields.append_signature_field(writer, fields.SigFieldSpec(name, on_page=page, box=box))
    # SignaturesExist | AppendOnly now, as signing would set them: later signatures then change nothing but
    # their own field, which a verifier's diff analysis requires
    form = writer.root["/AcroForm"]
    form["/SigFlags"] = generic.NumberObject(3)
    writer.update_container(form)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def add_empty_signature_fields(pdf: bytes, boxes: dict[str, tuple[int, int, int, int]], *, page: int = -1) -> bytes:
    """Add empty signature fields (name -> box in points) on ``page`` as one incremental update."""
    return add_signature_fields(pdf, {name: (page, box) for name, box in boxes.items()})
