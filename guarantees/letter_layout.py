"""The page layout of an e-guarantee letter (保函版式): reportlab platypus, one A4 page.

Called by :func:`guarantees.letters.build_letter_pdf`, which registers the font and formats amounts
and dates; this module only places text. The bottom margin keeps the seal box free on every page.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from reportlab.graphics.barcode import qrencoder
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

if TYPE_CHECKING:  # the data class lives in letters.py, which imports this module
    from guarantees.letters import LetterData

SEALED_TEXT = "密文，开标后解密 / sealed until the opening"

# Wording per kind of issuer: (title, English title, number, issuer, principal, beneficiary, amount)
_ROLES = {
    "bank": ("投标保函", "Bid Guarantee", "保函编号|Guarantee No.", "出函人|Guarantor (bank)",
             "被保证人（投标人）|Principal (bidder)", "受益人（招标人）|Beneficiary (tenderer)",
             "担保金额|Amount guaranteed"),
    "guarantee_company": ("投标保函", "Bid Guarantee", "保函编号|Guarantee No.",
                          "担保人|Guarantor (guarantee company)", "被保证人（投标人）|Principal (bidder)",
                          "受益人（招标人）|Beneficiary (tenderer)", "担保金额|Amount guaranteed"),
    "insurer": ("电子投标保证保险单", "Electronic Bid Bond Insurance Policy", "保单号|Policy No.",
                "保险人|Insurer", "投保人（投标人）|Policyholder (bidder)", "被保险人（招标人）|Insured (tenderer)",
                "保险金额|Sum insured"),
}

_CLAUSE_ZH = (
    "鉴于{principal}参加{beneficiary}组织的{tender}{lot}投标，{issuer}开立本{doc}：在有效期内，投标人在投标截止后"
    "撤回投标文件，或中标后无正当理由不与受益人订立合同、在订立合同时提出附加条件、未按招标文件要求提交履约保证金的，"
    "{issuer}在收到受益人书面索赔通知及证明材料后七个工作日内，向受益人支付不超过上述金额的款项（见索即付）。"
    "有效期届满或受益人退保后，本{doc}失效。"
)
_CLAUSE_EN = (
    "On the beneficiary's first written demand with evidence, received within the validity period, the issuer pays "
    "up to the amount above within seven working days if the bidder withdraws its bid after the deadline, or as "
    "the successful bidder refuses to sign the contract, adds conditions to it, or does not provide the "
    "performance security. This document ends at expiry or on release by the beneficiary."
)


def _styles(font: str) -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("base", fontName=font, fontSize=9.5, leading=13, wordWrap="CJK")
    return {
        "title": ParagraphStyle("title", parent=base, fontSize=20, leading=26, alignment=TA_CENTER),
        "subtitle": ParagraphStyle("subtitle", parent=base, fontSize=10, leading=14, alignment=TA_CENTER,
                                   textColor=colors.HexColor("#444444")),
        "label": ParagraphStyle("label", parent=base, fontSize=9, leading=11.5),
        "value": base,
        "small": ParagraphStyle("small", parent=base, fontSize=7.5, leading=10, textColor=colors.HexColor("#333333")),
        "clause": ParagraphStyle("clause", parent=base, fontSize=9.5, leading=14, firstLineIndent=19),
    }


def _label(text: str, style: ParagraphStyle) -> Paragraph:
    zh, _, en = text.partition("|")
    return Paragraph(f'{escape(zh)}<br/><font size="7" color="#555555">{escape(en)}</font>', style)


def _party(name: str, uscc: str) -> str:
    return f"{escape(name)}<br/>统一社会信用代码 USCC: {escape(uscc)}"


def _rows(data: LetterData, roles: tuple, st: dict, *, digest: str | None, amount_words: str,
          amount_figures: str, when: Callable[[datetime], str]) -> list[list]:
    _, _, number, issuer, principal, beneficiary, amount = roles
    sealed_value = escape(SEALED_TEXT)
    show = data.shows_details
    rows = [
        (number, escape(data.guarantee_no)),
        (issuer, escape(data.issuer_name)),
        (beneficiary, _party(data.beneficiary.name, data.beneficiary.uscc) if show else sealed_value),
        (principal, _party(data.principal.name, data.principal.uscc) if show else sealed_value),
        ("招标项目|Tender", f"{escape(data.tender_code)}<br/>{escape(data.tender_title)}" if show else sealed_value),
        ("标段（包）|Lot", f"{escape(data.lot_code)}<br/>{escape(data.lot_title)}" if show else sealed_value),
        (amount, f"{escape(amount_figures)}<br/>人民币（大写）{escape(amount_words)}"),
        ("保函形式|Form", "密文保函 / sealed letter" if data.sealed else "明文保函 / plain letter"),
        ("有效期|Validity",
         f"自 {when(data.valid_from)} 起至 {when(data.valid_until)} 止（北京时间）<br/>"
         f"from {when(data.valid_from)} until {when(data.valid_until)}, Beijing time (UTC+8)"),
        ("开立日期|Issue date", f"{when(data.issued_at)}（北京时间 Beijing time）"),
        ("验证码|Verification code", f'<font size="12">{escape(data.verification_code)}</font>'),
    ]
    if digest is not None:
        rows.append(("密文摘要|Sealed details digest",
                     f'<font size="7.5">SHA-256 {digest}</font>'
                     + ("" if show else "<br/>开标后出函人发布第二版，载明上述信息及盐值，可据此复核本摘要。"
                                        " The issuer publishes a second revision with the details after the opening.")))
    if data.revealed_at is not None:
        rows.append(("解密信息|Revealed",
                     f"第二版（第一版为密文保函），开标后于 {when(data.revealed_at)} 解密；盐值 salt: "
                     f'<font size="7.5">{escape(data.details_salt)}</font><br/>'
                     "Revision 2 of a sealed letter: the details above and the salt hash to the digest."))
    return [[_label(label, st["label"]), Paragraph(value, st["value"])] for label, value in rows]


def _clause(data: LetterData, roles: tuple) -> str:
    doc = "保险单" if data.issuer_kind == "insurer" else "保函"
    if data.shows_details:
        parts = {"principal": f"{data.principal.name}（投标人）", "beneficiary": f"{data.beneficiary.name}（受益人）",
                 "tender": f"{data.tender_title}（{data.tender_code}）", "lot": f"{data.lot_title}（{data.lot_code}）"}
    else:
        parts = {"principal": "密文所载投标人", "beneficiary": "密文所载受益人", "tender": "密文所载招标项目及标段",
                 "lot": ""}
    return escape(_CLAUSE_ZH.format(issuer=data.issuer_name, doc=doc, **parts))


class QrCode(Flowable):
    """A QR code (验真二维码) drawn as plain rectangles.

    reportlab's QrCodeWidget goes through a Drawing, which adds an unembedded Helvetica to the page
    resources; letters must embed every font they name.
    """

    QUIET_ZONE = 2  # modules of white around the code

    def __init__(self, text: str, size: float):
        super().__init__()
        self.code = qrencoder.QRCode(None, qrencoder.QRErrorCorrectLevel.M)
        self.code.addData(text)
        self.code.make()
        self.size = size

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        return self.size, self.size

    def draw(self) -> None:
        count = self.code.getModuleCount()
        box = self.size / (count + 2 * self.QUIET_ZONE)
        canvas = self.canv
        canvas.setFillColor(colors.black)
        for row in range(count):
            for col in range(count):
                if self.code.isDark(row, col):
                    x = (col + self.QUIET_ZONE) * box
                    y = self.size - (row + 1 + self.QUIET_ZONE) * box
                    canvas.rect(x, y, box, box, stroke=0, fill=1)


def render_letter(data: LetterData, *, font_name: str, seal_box: tuple[int, int, int, int], digest: str | None,
                  amount_words: str, amount_figures: str, when: Callable[[datetime], str]) -> bytes:
    """Lay the letter out and return the unsigned PDF."""
    roles = _ROLES[data.issuer_kind]
    st = _styles(font_name)
    buffer = io.BytesIO()
    page_w, _ = A4
    doc = SimpleDocTemplate(
        buffer, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=14 * mm,
        bottomMargin=seal_box[3] + 6, initialFontName=font_name, title=f"{roles[0]} {data.guarantee_no}", author=data.issuer_name,
        subject=f"guarantee_no={data.guarantee_no}; verification_code={data.verification_code}",
        creator="ebid e-guarantee letter", keywords=f"{data.guarantee_no} {data.verification_code}")
    table = Table(_rows(data, roles, st, digest=digest, amount_words=amount_words, amount_figures=amount_figures,
                        when=when), colWidths=[42 * mm, page_w - 36 * mm - 42 * mm])
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), font_name),  # else the table names an unembedded Helvetica
        ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#888888")),
        ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f2f2f2")),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
    ]))
    revision = "（第二版 · 解密）Revision 2 (revealed)" if data.revealed_at is not None else ""
    verify = Table([[
        Paragraph("验真 How to verify: 扫描二维码或访问下列网址，输入保函编号与验证码，核对文件 SHA-256 与"
                  "出函机构登记一致、签章有效。Scan the code or open the address, enter the number and the "
                  f"verification code, and check the seal.<br/>{escape(data.verify_url)}", st["small"]),
        QrCode(data.verify_url, 22 * mm),
    ]], colWidths=[page_w - 36 * mm - 26 * mm, 26 * mm])
    verify.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), font_name), ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    story = [
        Paragraph(escape(roles[0]), st["title"]),
        Paragraph(f"{escape(roles[1])} {escape(revision)}", st["subtitle"]),
        Spacer(1, 4 * mm), table, Spacer(1, 3 * mm),
        Paragraph(_clause(data, roles), st["clause"]),
        Paragraph(escape(_CLAUSE_EN), st["small"]),
        Spacer(1, 2 * mm), verify,
    ]

    def footer(canvas, document) -> None:
        canvas.saveState()
        canvas.setFont(font_name, 7.5)
        canvas.setFillColor(colors.HexColor("#555555"))
        canvas.drawString(18 * mm, 12 * mm, f"{data.guarantee_no} · 第 {document.page} 页 page · "
                                           "本文件以出函机构电子签章为准 valid only with the issuer's electronic seal")
        canvas.restoreState()

    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
